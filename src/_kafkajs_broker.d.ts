/** The part of kafkajs 2.2.4's internal broker (`src/broker/index.js`) that ./_kafkajs_reconnect.ts and ./check/_kafkajs_silent_broker.ts patch. */
declare class Broker {
  readonly connectionPool: {
    readonly host: string;
    readonly port: number;
    /** Sends a request on the connection for everything but fetches. */
    send(request: { request: unknown; response: unknown }): Promise<unknown>;
    /** That connection, connected. */
    getConnection(): Promise<{ rejectRequests(error: Error): void }>;
  };
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  produce(request: unknown): Promise<unknown>;
  metadata(topics?: string[]): Promise<unknown>;
}
export default Broker;
