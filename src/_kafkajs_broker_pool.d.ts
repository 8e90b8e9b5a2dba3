import type Broker from "./_kafkajs_broker.d.ts";

/** The part of kafkajs 2.2.4's internal broker pool (`src/cluster/brokerPool.js`) that ./check/_kafkajs_silent_broker.ts patches. */
declare class BrokerPool {
  /** The brokers of the last metadata read, by node id. */
  readonly brokers: Record<string, Broker>;
  findBroker(options: { nodeId: string }): Promise<Broker>;
  /** A connected broker to read metadata from (any; kafkajs shuffles them). */
  findConnectedBroker(): Promise<Broker>;
  /** Forgets the broker and marks the metadata stale, so the next request reads it anew. */
  removeBroker(address: { host: string; port: number }): void;
}
export default BrokerPool;
