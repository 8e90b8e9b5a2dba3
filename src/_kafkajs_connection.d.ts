/** The part of kafkajs 2.2.4's internal connection (`src/network/connection.js`) that ./_kafkajs_reconnect.ts patches. */
declare class Connection {
  readonly host: string;
  readonly port: number;
  /** The SASL settings, when the listener wants authentication. */
  readonly sasl?: unknown;
  /** The API versions kafkajs negotiated with the broker, once it has (null before). */
  readonly versions: unknown;
  isAuthenticated(): boolean;
  /** Authenticates with SASL, once `versions` is set. */
  authenticate(): Promise<void>;
  /** True while connected, and also while disconnecting (kafkajs's own notion). */
  isConnected(): boolean;
  connect(): Promise<boolean>;
  /** Waits for the requests in flight to settle, then closes the socket. */
  disconnect(): Promise<boolean>;
  send(request: { request: unknown; response: unknown }): Promise<unknown>;
  /** Fails every request in flight on the connection with `error`. */
  rejectRequests(error: Error): void;
}
export default Connection;
