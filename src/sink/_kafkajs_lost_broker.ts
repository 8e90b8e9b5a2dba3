/**
 * Fixes for a kafkajs 2.2.4 consumer that stops reading every partition when one broker is killed or hung,
 * until the sink's stall detector replaces it (20 s in). Both seen in the cluster failover test.
 *
 * The cause, in `src/consumer/`: the fetch manager runs one fetcher per broker under one `Promise.all`, and
 * any error a fetcher throws stops them all, throwing away the batches the healthy brokers were answering;
 * the runner then retries with backoff (0.3 s to 15 s). Two errors are thrown on when they need not be:
 *
 * - A partition leader that refuses connections (killed) or does not answer (frozen): `recoverFromFetch()`
 *   handles a closed connection by dropping the broker, but throws these on. For a refused connection kafkajs
 *   has refreshed the metadata, so it recovers once the cluster fences the broker and the backoff ends; for a
 *   frozen broker nothing refreshes the metadata (only its 5-minute expiry would), so every retry waits out a
 *   request timeout on it again.
 * - A group coordinator that went away: every fetch heartbeats to the coordinator found at the last join, and
 *   kafkajs rejoins (finding the coordinator anew) when a heartbeat answers "not the coordinator", but a
 *   heartbeat that cannot reach it at all is handled as any other error: every fetcher stops and the runner
 *   retries, heartbeating the same broker. A frozen coordinator is worse: every fetcher waits on the one
 *   heartbeat in flight until it times out.
 *
 * The fixes: with more than one broker known, a refused fetch costs its own fetcher a pause and a silent
 * broker is dropped from the pool (as kafkajs does for a closed connection), so the next fetch reads fresh
 * metadata from another broker; the fetch returns no batches and the other fetchers go on. With one broker
 * known nothing else could be read, and kafkajs's own handling stays. A heartbeat that cannot reach the
 * coordinator is reported as "not the coordinator", which kafkajs answers by rejoining the group; and since
 * every fetch waits for the heartbeat in flight, a fetch waits at most a second for it, and a heartbeat that
 * fails later is reported by the next one.
 *
 * @module
 */
// @ts-types="./_kafkajs_consumer_group.d.ts"
import ConsumerGroup from "kafkajs/src/consumer/consumerGroup.js";

/** How long a fetcher whose broker refuses connections waits before it tries (and refreshes metadata) again. */
const REFUSED_PAUSE_MS = 1_000;

/**
 * How long a fetch waits for a heartbeat. kafkajs heartbeats after every batch, and every fetcher waits for
 * the one heartbeat in flight: a frozen coordinator would hold every partition for a request timeout.
 */
const HEARTBEAT_WAIT_MS = 1_000;

/** Errors of a request that never reached a broker, or was never answered. */
const UNREACHABLE = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
]);

let applied = false;

/** Applies the fixes once per process (kafkajs's modules are shared by every client). */
export function fixKafkajsLostBroker(): void {
  if (applied) return;
  applied = true;
  const recoverFromFetch = ConsumerGroup.prototype.recoverFromFetch;
  ConsumerGroup.prototype.recoverFromFetch = async function (
    this: ConsumerGroup,
    error: Error,
  ): Promise<void> {
    const broker = unreachableBroker(error);
    if (broker === null || this.cluster.getNodeIds().length < 2) {
      return await recoverFromFetch.call(this, error);
    }
    if (error.name === "KafkaJSRequestTimeoutError") {
      this.cluster.removeBroker(broker);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, REFUSED_PAUSE_MS));
  };
  const heartbeat = ConsumerGroup.prototype.heartbeat;
  const laterFailures = new WeakMap<ConsumerGroup, Error>();
  const silentBeats = new WeakSet<ConsumerGroup>();
  ConsumerGroup.prototype.heartbeat = async function (
    this: ConsumerGroup,
    options: { interval: number },
  ): Promise<void> {
    const failed = laterFailures.get(this);
    if (failed !== undefined) {
      laterFailures.delete(this);
      throw failed;
    }
    if (silentBeats.has(this)) return;
    // Never rejects: resolves to the error to throw, or null.
    const beat = heartbeat.call(this, options).then(
      () => null,
      (error: Error) => UNREACHABLE.has(error.name) ? new CoordinatorUnreachable(error) : error,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<"waiting">((resolve) =>
      timer = setTimeout(() => resolve("waiting"), HEARTBEAT_WAIT_MS)
    );
    const first = await Promise.race([beat, waited]);
    clearTimeout(timer);
    if (first === "waiting") {
      // A silent coordinator: fetching goes on without waiting on it again, and the heartbeat's failure is
      // thrown by the next call.
      silentBeats.add(this);
      beat.then((error) => {
        silentBeats.delete(this);
        if (error !== null) laterFailures.set(this, error);
      });
      return;
    }
    if (first !== null) throw first;
  };
}

/**
 * A heartbeat that could not reach the group's coordinator, typed as kafkajs's "not the coordinator" error so
 * its runner rejoins the group, finding the coordinator anew.
 */
export class CoordinatorUnreachable extends Error {
  readonly type = "NOT_COORDINATOR_FOR_GROUP";
  readonly retriable = true;
  constructor(cause: Error) {
    super(`Cannot reach the group coordinator (${cause.message}): rejoining the group to find it again`, {
      cause,
    });
    this.name = "CoordinatorUnreachable";
  }
}

/**
 * The broker a fetch could not reach (refused, timed out connecting, or silent), or null for other errors,
 * among them a closed connection, which kafkajs handles itself.
 */
export function unreachableBroker(error: Error): { host: string; port: number } | null {
  if (error.name !== "KafkaJSConnectionError" && error.name !== "KafkaJSRequestTimeoutError") return null;
  const address = (error as { broker?: unknown }).broker;
  if (typeof address !== "string") return null;
  const colon = address.lastIndexOf(":");
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port)) return null;
  return { host: address.slice(0, colon), port };
}
