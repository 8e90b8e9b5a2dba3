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
 *   heartbeat in flight until it times out (10 s for the sink, 30 s by default).
 *
 * The fixes, for the fetches: with more than one broker known, a refused fetch costs its own fetcher a pause
 * and a silent broker is dropped from the pool (as kafkajs does for a closed connection; its connection is
 * closed), so the next fetch reads fresh metadata from another broker; the fetch returns no batches and the
 * other fetchers go on. With one broker known nothing else could be read, and kafkajs's own handling stays.
 * While the cluster has not yet moved a silent broker's partitions, the fresh metadata names it again; the new
 * connection to it then costs a short probe, not another request timeout (../_kafkajs_reconnect.ts).
 *
 * For the heartbeats: a fetch waits at most a second for the heartbeat in flight, and later calls do not wait
 * on it again. A heartbeat that cannot reach the coordinator asks for a rejoin (as "not the coordinator",
 * which kafkajs's runner answers by rejoining) when a fresh look-up finds the group at another node; a join
 * sent to a coordinator that is only slow, or not yet replaced, would wait out the rebalance timeout. What a
 * heartbeat that outlasted its second comes to is reported by every call after it until the member rejoins,
 * since the sink's writers also heartbeat and ignore failures. And a consumer whose last join failed, which
 * kafkajs (with ./_kafkajs_membership.ts, which leaves that member) would let fetch on without a member id
 * and without heartbeats, is made to join again.
 *
 * @module
 */
// @ts-types="./_kafkajs_consumer_group.d.ts"
import ConsumerGroup from "kafkajs/src/consumer/consumerGroup.js";
import { deadline, delay } from "../async.ts";
import { abandon, fixKafkajsReconnect, markSilent } from "../_kafkajs_reconnect.ts";

/** How long a fetcher whose broker refuses connections waits before it tries (and refreshes metadata) again. */
const REFUSED_PAUSE_MS = 1_000;

/**
 * How long a fetch waits for a heartbeat. kafkajs heartbeats after every batch, and every fetcher waits for
 * the one heartbeat in flight: a frozen coordinator would hold every partition for a request timeout.
 */
const HEARTBEAT_WAIT_MS = 1_000;

/** How long a failed heartbeat waits to learn where the group's coordinator is now. */
const COORDINATOR_LOOKUP_MS = 5_000;

/** Errors of a request that never reached a broker, or was never answered (the coordinator's, say). */
export const UNREACHABLE: ReadonlySet<string> = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
]);

let applied = false;

/** Applies the fixes once per process (kafkajs's modules are shared by every client). */
export function fixKafkajsLostBroker(): void {
  if (applied) return;
  applied = true;
  fixKafkajsReconnect();
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
      // Its connection would stay open (and polled) for as long as the broker stays silent.
      const silent = Object.values(this.cluster.brokerPool.brokers).find(({ connectionPool }) =>
        connectionPool.host === broker.host && connectionPool.port === broker.port
      );
      markSilent(broker);
      this.cluster.removeBroker(broker);
      // Its other requests (metadata, a heartbeat to it as coordinator) fail now, not a request timeout later.
      if (silent !== undefined) abandon(silent, "dropped: a fetch went unanswered");
      return;
    }
    await delay(REFUSED_PAUSE_MS);
  };
  const heartbeat = ConsumerGroup.prototype.heartbeat;
  const silentBeats = new WeakMap<ConsumerGroup, SilentBeat>();
  ConsumerGroup.prototype.heartbeat = async function (
    this: ConsumerGroup,
    options: { interval: number },
  ): Promise<void> {
    const { generationId, memberId } = this;
    // A member that left after a failed join (./_kafkajs_membership.ts): kafkajs would fetch on without one.
    if (!memberId) throw new RejoinGroup("the consumer is not a member of the group: its last join failed");
    const silent = silentBeats.get(this);
    if (silent !== undefined) {
      if (silent.generationId === generationId && silent.memberId === memberId) {
        if (!silent.settled) return;
        // Every caller sees it (the sink's writers heartbeat too, and ignore failures) until the member rejoins.
        if (silent.failure !== null) throw silent.failure;
      }
      silentBeats.delete(this);
    }
    // Never rejects: resolves to the error to throw, or null.
    const beat = heartbeat.call(this, options).then(
      () => null,
      (error: Error) => failureToReport(this, error),
    );
    const first = await deadline(beat, HEARTBEAT_WAIT_MS).catch(() => "waiting" as const);
    if (first !== "waiting") {
      if (first !== null) throw first;
      return;
    }
    // A silent coordinator: fetching goes on without waiting on it again. What the heartbeat comes to is
    // thrown by the calls after it, unless it only timed out at a coordinator that has not moved: the next
    // heartbeat then tries again.
    const record: SilentBeat = { generationId, memberId, settled: false, failure: null };
    silentBeats.set(this, record);
    beat.then((failure) => {
      record.failure = failure !== null && UNREACHABLE.has(failure.name) ? null : failure;
      record.settled = true;
    });
  };
}

/** A heartbeat that outlasted {@linkcode HEARTBEAT_WAIT_MS}, for the member and generation that sent it. */
interface SilentBeat {
  readonly generationId: number;
  readonly memberId: string;
  settled: boolean;
  failure: Error | null;
}

/**
 * What a failed heartbeat reports: for a coordinator it could not reach, a rejoin when the group has moved to
 * another node, else the error itself (kafkajs retries). A join sent to a coordinator that is still silent
 * would wait out the rebalance timeout (a minute).
 */
async function failureToReport(group: ConsumerGroup, error: Error): Promise<Error> {
  if (!UNREACHABLE.has(error.name)) return error;
  const current = group.coordinator?.nodeId;
  const lookup = group.cluster.findGroupCoordinatorMetadata({ groupId: group.groupId });
  const fresh = await deadline(lookup, COORDINATOR_LOOKUP_MS).then(
    ({ coordinator }) => coordinator.nodeId,
    () => current,
  );
  if (fresh === current) return error;
  return new RejoinGroup(
    `cannot reach the group coordinator, node ${current} (${error.message}); the group is now at node ${fresh}`,
    error,
  );
}

/**
 * Typed as kafkajs's "not the coordinator" error, which its runner answers by rejoining the group (finding the
 * coordinator anew).
 */
export class RejoinGroup extends Error {
  readonly type = "NOT_COORDINATOR_FOR_GROUP";
  readonly retriable = true;
  constructor(why: string, cause?: Error) {
    super(`Rejoining the group: ${why}`, { cause });
    this.name = "RejoinGroup";
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
