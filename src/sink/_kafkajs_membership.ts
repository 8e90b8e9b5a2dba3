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
 * @module
 */
// @ts-types="./_kafkajs_consumer_group.d.ts"
import ConsumerGroup, { type GroupCluster } from "kafkajs/src/consumer/consumerGroup.js";
import type { Kafka } from "kafkajs";
import { deadline } from "../async.ts";
import { UNREACHABLE } from "./_kafkajs_lost_broker.ts";

/** How long a member's LeaveGroup may take, coordinator lookups included. */
const LEAVE_MS = 5_000;
/** LeaveGroup attempts, each at the coordinator found just before it. */
const LEAVE_ATTEMPTS = 3;

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
  const joinAndSync = ConsumerGroup.prototype.joinAndSync;
  ConsumerGroup.prototype.joinAndSync = async function (this: ConsumerGroup): Promise<void> {
    try {
      await joinAndSync.call(this);
    } catch (error) {
      // kafkajs restarts with a new ConsumerGroup, and so a new member id: this one would be left behind.
      await this.leave().catch(() => {});
      this.memberId = null;
      throw error;
    }
  };
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
      const type = (error as { type?: string }).type;
      if (type === "UNKNOWN_MEMBER_ID") return;
      const retriable = (type !== undefined && MOVED_COORDINATOR.has(type)) ||
        UNREACHABLE.has((error as Error).name);
      if (!retriable || attempt >= LEAVE_ATTEMPTS) throw error;
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
