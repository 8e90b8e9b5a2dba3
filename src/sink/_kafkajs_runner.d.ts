/** The part of kafkajs 2.2.4's internal consumer runner (`src/consumer/runner.js`) that ./_kafkajs_stop.ts and ./_kafkajs_membership.ts patch. */
declare class Runner {
  running: boolean;
  fetchManager: { stop(): Promise<void> };
  fetch(nodeId: number): Promise<unknown[]>;
  /** The consumer group it runs (kafkajs's internal `ConsumerGroup`). */
  readonly consumerGroup: object;
  stop(): Promise<void>;
}
export default Runner;
