/**
 * Group members that kafkajs 2.2.4 gives up on without leaving the group, removed from it.
 *
 * A member that has joined but never sends LeaveGroup stays in the group until its session times out (20 s,
 * ./group_consumer.ts), and until then every join waits for it: the group cannot rebalance while a member it
 * knows has not rejoined. kafkajs leaves such members behind in three places, all seen in the cluster
 * failover test, where each one added a session timeout to the time a partition stored nothing:
 *
 * - `ConsumerGroup.joinAndSync()` gives up when SyncGroup fails for a coordinator that moved ("The group
 *   coordinator is not available"); kafkajs then restarts with a new `ConsumerGroup` and a new member id,
 *   and the old id, which joined, is never left.
 * - `ConsumerGroup.leave()` sends LeaveGroup to the coordinator found at the last join; after a failover that
 *   broker answers "This is not the correct coordinator", and the error is swallowed by `Runner.stop()`.
 * - A consumer the sink replaces because it stalled may never reach `leave()` at all: `Runner.stop()` first
 *   waits for its fetchers, which can wait on a dead broker.
 *
 * The fix: {@linkcode fixKafkajsMembership} makes `leave()` find the coordinator anew, and has a failed
 * `joinAndSync()` leave the member it joined as; {@linkcode removeMember} leaves a member from a fresh
 * connection, for a consumer that cannot be relied on to do it.
 *
 * While the group's coordinator moves (a rolling restart, a dead node), a join fails for a few seconds: the
 * new coordinator is still loading the group ("The coordinator is loading"), or the old one is gone. kafkajs
 * gives up on such a join at once, and its runner tries again with a backoff that doubles with each failure
 * (up to 15 s for the sink), so the sink could read nothing for many seconds after the coordinator was ready;
 * the failover test's CI run saw 22 s, ended by the stall detector. A join that fails so is now tried again
 * in place every half second, for up to {@linkcode JOIN_RETRY_MS}, with the member id it has, unless the
 * consumer is being stopped (its runner's `stop()` was called), which must not wait on it.
 *
 * @module
 */
// @ts-types="./_kafkajs_consumer_group.d.ts"
import ConsumerGroup, { type GroupCluster } from "kafkajs/src/consumer/consumerGroup.js";
// @ts-types="./_kafkajs_runner.d.ts"
import Runner from "kafkajs/src/consumer/runner.js";
import type { Kafka } from "kafkajs";
import { deadline, delay } from "../async.ts";
import { UNREACHABLE } from "./_kafkajs_lost_broker.ts";

/** How long a member's LeaveGroup may take, coordinator lookups included. */
const LEAVE_MS = 5_000;
/** LeaveGroup attempts, each at the coordinator found just before it. */
const LEAVE_ATTEMPTS = 3;

/** How long a join that fails while the coordinator moves is tried again in place (the stall timeout is 20 s). */
export const JOIN_RETRY_MS = 10_000;
/** The pause between those tries. */
const JOIN_PAUSE_MS = 500;

/** Consumer groups whose runner was told to stop: a failed join of theirs is not tried again. */
const stopping = new WeakSet<object>();

/** Errors after which the group's coordinator is to be found again. */
const MOVED_COORDINATOR = new Set([
  "NOT_COORDINATOR_FOR_GROUP",
  "GROUP_COORDINATOR_NOT_AVAILABLE",
  "GROUP_LOAD_IN_PROGRESS",
]);

let applied = false;

/** Applies the fix once per process (kafkajs's modules are shared by every client). */
export function fixKafkajsMembership(): void {
  if (applied) return;
  applied = true;
  ConsumerGroup.prototype.leave = async function (this: ConsumerGroup): Promise<void> {
    const { groupId, memberId } = this;
    if (!memberId) return;
    await deadline(leaveAtCoordinator(this.cluster, groupId, memberId), LEAVE_MS);
    this.memberId = null;
  };
  const stop = Runner.prototype.stop;
  Runner.prototype.stop = function (this: Runner): Promise<void> {
    stopping.add(this.consumerGroup);
    return stop.call(this);
  };
  const joinAndSync = ConsumerGroup.prototype.joinAndSync;
  ConsumerGroup.prototype.joinAndSync = async function (this: ConsumerGroup): Promise<void> {
    try {
      await joinWhileCoordinatorMoves(
        () => joinAndSync.call(this),
        JOIN_RETRY_MS,
        JOIN_PAUSE_MS,
        (error) => {
          if (stopping.has(this)) return false;
          this.logger.warn("The group's coordinator is moving, joining again", {
            groupId: this.groupId,
            error: error.message,
          });
          return true;
        },
      );
    } catch (error) {
      // kafkajs restarts with a new ConsumerGroup, and so a new member id: this one would be left behind.
      await this.leave().catch(() => {});
      this.memberId = null;
      throw error;
    }
  };
}

/**
 * Runs `join` until it succeeds, fails for another reason than a coordinator moving, loading or out of reach,
 * or `withinMs` would pass; waits `pauseMs` between tries. `onRetry` is told why before each pause, and
 * ends the tries by answering false.
 *
 * @example
 * ```ts
 * import { joinWhileCoordinatorMoves } from "./_kafkajs_membership.ts";
 * await joinWhileCoordinatorMoves(() => Promise.resolve(), 10_000, 500);
 * ```
 */
export async function joinWhileCoordinatorMoves(
  join: () => Promise<void>,
  withinMs: number,
  pauseMs: number,
  onRetry: (error: Error) => boolean = () => true,
): Promise<void> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return await join();
    } catch (error) {
      if (!coordinatorMoving(error) || Date.now() + pauseMs > until || !onRetry(error as Error)) throw error;
      await delay(pauseMs);
    }
  }
}

/**
 * Whether `error`, or an error it wraps (kafkajs wraps the last error of its retries), says the group's
 * coordinator moved, is loading the group, or cannot be reached or found.
 */
function coordinatorMoving(error: unknown): boolean {
  let cause = error;
  for (let depth = 0; depth < 5 && cause instanceof Error; depth++, cause = cause.cause) {
    const type = (cause as { type?: string }).type;
    if (type !== undefined && MOVED_COORDINATOR.has(type)) return true;
    if (UNREACHABLE.has(cause.name) || cause.name === "KafkaJSGroupCoordinatorNotFound") return true;
  }
  return false;
}

/**
 * Leaves `memberId` from `groupId` through a connection of its own, within a few seconds; resolves to
 * whether the member is gone (left now, or unknown to the coordinator already). For a consumer being
 * replaced, which may be stuck on a dead broker.
 *
 * @example
 * ```ts
 * import type { Kafka } from "kafkajs";
 * declare const kafka: Kafka;
 * await removeMember(kafka, "monitor-sink", "monitor-sink-3ec9bb81-e361-430f-bcf5-d93a3b3d3835");
 * ```
 */
export async function removeMember(kafka: Kafka, groupId: string, memberId: string): Promise<boolean> {
  const cluster = createCluster(kafka);
  if (cluster === null) return false;
  const leaving = (async () => {
    try {
      await cluster.connect();
      await leaveAtCoordinator(cluster, groupId, memberId);
    } finally {
      await cluster.disconnect().catch(() => {});
    }
  })();
  return await deadline(leaving, LEAVE_MS).then(() => true, () => false);
}

/** LeaveGroup at the group's coordinator, found anew before each attempt; a member already gone counts as left. */
async function leaveAtCoordinator(cluster: GroupCluster, groupId: string, memberId: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      const coordinator = await cluster.findGroupCoordinator({ groupId });
      await coordinator.leaveGroup({ groupId, memberId });
      return;
    } catch (error) {
      if ((error as { type?: string }).type === "UNKNOWN_MEMBER_ID") return;
      if (!coordinatorMoving(error) || attempt >= LEAVE_ATTEMPTS) throw error;
    }
  }
}

/**
 * A kafkajs cluster (connections, metadata, coordinator lookup) with `kafka`'s brokers, TLS and SASL, made by
 * the factory kafkajs keeps under a private symbol; null when a later kafkajs has no such factory.
 */
function createCluster(kafka: Kafka): GroupCluster | null {
  const key = Object.getOwnPropertySymbols(kafka).find((symbol) =>
    symbol.description === "private:Kafka:createCluster"
  );
  const factory = key === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[key];
  if (typeof factory !== "function") return null;
  return factory({ allowAutoTopicCreation: false }) as GroupCluster;
}
