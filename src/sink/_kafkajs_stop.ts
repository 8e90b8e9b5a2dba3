/**
 * A fix for a kafkajs 2.2.4 consumer that is stopped while brokers come and go: it can spin forever at
 * 100% CPU on the main thread, and its `disconnect()` never returns.
 *
 * The cause, in `src/consumer/`: `Runner.stop()` sets `running = false` and stops the fetchers that exist at
 * that moment. But when the set of broker ids changes (a broker killed or restarted), `FetchManager.start()`
 * replaces its fetchers in a loop (`KafkaJSFetcherRebalanceError` -> `continue`) that does not look at
 * `running`, so it can start new fetchers after the stop. Each new fetcher loops `while (isRunning)` on
 * `Runner.fetch()`, which returns `[]` at once when the runner is not running: a loop of resolved promises
 * that never yields to the event loop, so no timer, signal or I/O is ever handled again. `stop()` meanwhile
 * waits for a "consuming stopped" event that only comes when `FetchManager.start()` returns, so it never
 * does. Seen in the cluster failover test (a `perf` profile of the stuck sink: 100% in
 * `fetcher.js` `start`), after a stalled consumer was replaced and after SIGTERM during a broker restart.
 *
 * The fix: a fetch on a stopped runner also stops the fetchers that are running now, so they end, the
 * fetch manager returns, and the stop completes.
 *
 * @module
 */
// @ts-types="./_kafkajs_runner.d.ts"
import Runner from "kafkajs/src/consumer/runner.js";

let applied = false;

/** Applies the fix once per process (kafkajs's modules are shared by every client). */
export function fixKafkajsStop(): void {
  if (applied) return;
  applied = true;
  const original = Runner.prototype.fetch;
  Runner.prototype.fetch = function (this: Runner, nodeId: number): Promise<unknown[]> {
    if (this.running) return original.call(this, nodeId);
    // Not awaited: stopping a fetcher waits for its loop to end, which waits for this very call.
    this.fetchManager.stop().catch(() => {});
    return Promise.resolve([]);
  };
}
