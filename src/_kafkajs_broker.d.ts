import type { ProbedConnection } from "./_kafkajs_reconnect.ts";

/** The part of kafkajs 2.2.4's internal broker (`src/broker/index.js`) that ./_kafkajs_reconnect.ts and ./check/_kafkajs_silent_broker.ts patch. */
declare class Broker {
  readonly connectionPool: {
    readonly host: string;
    readonly port: number;
    /**
     * One of the broker's two connections, connected: 0 carries every request but fetches, 1 the fetches (so
     * a producer's is free).
     */
    getConnection(index?: 0 | 1): Promise<ProbedConnection>;
    /** The broker's two connections, connected or not (indexes as for `getConnection`). */
    readonly pool: readonly ProbedConnection[];
    /** Calls `callback` with each of the broker's connections, connected or not. */
    map<T>(callback: (connection: ProbedConnection) => T): T[];
  };
  isConnected(): boolean;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  produce(request: unknown): Promise<unknown>;
  metadata(topics?: string[]): Promise<unknown>;
}
export default Broker;
