/** The part of kafkajs 2.2.4's internal broker (`src/broker/index.js`) that ./_kafkajs_silent_broker.ts patches. */
declare class Broker {
  readonly connectionPool: { readonly host: string; readonly port: number };
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  produce(request: unknown): Promise<unknown>;
  metadata(topics?: string[]): Promise<unknown>;
}
export default Broker;
