/** The part of kafkajs 2.2.4's internal consumer runner (`src/consumer/runner.js`) that ./_kafkajs_stop.ts patches. */
declare class Runner {
  running: boolean;
  fetchManager: { stop(): Promise<void> };
  fetch(nodeId: number): Promise<unknown[]>;
}
export default Runner;
