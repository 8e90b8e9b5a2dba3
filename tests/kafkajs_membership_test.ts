/**
 * Members kafkajs cannot leave the group with, removed from a connection of their own (src/sink/_kafkajs_membership.ts),
 * on the real broker.
 */
import type { Consumer } from "kafkajs";
import { assertEquals } from "./_assert.ts";
import { createTopic, plainKafka } from "./_kafka.ts";
import { waitFor } from "./_cli.ts";
import {
  fixKafkajsMembership,
  joinWhileCoordinatorMoves,
  removeMember,
} from "../src/sink/_kafkajs_membership.ts";

/**
 * Far longer than the test waits for the fresh member: a member left behind would hold the join until its
 * session or the rebalance timeout (60 s) ran out.
 */
const STUCK_SESSION_MS = 90_000;

Deno.test({
  name: "a member stuck in its batch (no heartbeats) is removed at once: a fresh member joins with every " +
    "partition long before the stuck one's session would time out",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  fixKafkajsMembership();
  const topic = await createTopic("membership", 2);
  const group = `membership-${crypto.randomUUID().slice(0, 8)}`;
  const kafka = plainKafka();
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ value: "a", partition: 0 }, { value: "b", partition: 1 }] });
  await producer.disconnect();

  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  const stuck = kafka.consumer({
    groupId: group,
    sessionTimeout: STUCK_SESSION_MS,
    rebalanceTimeout: 60_000,
  });
  let stuckMember: string | null = null;
  let inBatch = false;
  stuck.on(stuck.events.GROUP_JOIN, (event) => stuckMember ??= event.payload.memberId);
  const fresh = kafka.consumer({ groupId: group, sessionTimeout: 20_000 });
  let freshPartitions: number[] = [];
  fresh.on(fresh.events.GROUP_JOIN, (event) => freshPartitions = event.payload.memberAssignment[topic] ?? []);
  const admin = kafka.admin();
  await admin.connect();
  const members = async () =>
    (await admin.describeGroups([group])).groups[0]!.members.map((member) => member.memberId);
  try {
    await subscribe(stuck, topic);
    // kafkajs heartbeats between batches only: a batch that never ends is a member that never heartbeats.
    await stuck.run({
      eachBatch: async () => {
        inBatch = true;
        await released;
      },
    });
    await waitFor(() => inBatch, 20_000, "the first member to be in its batch");
    assertEquals(await members(), [stuckMember]);

    assertEquals(await removeMember(kafka, group, stuckMember!), true);
    assertEquals(await members(), [], "the stuck member is still in the group");
    // Already gone is gone.
    assertEquals(await removeMember(kafka, group, stuckMember!), true);

    await subscribe(fresh, topic);
    // Not awaited: run() returns once joined, and a member left behind would hold the join for a minute.
    const running = fresh.run({ eachMessage: () => Promise.resolve() });
    await waitFor(
      () => freshPartitions.length === 2,
      30_000,
      "the fresh member to join with both partitions",
    );
    await running;
    assertEquals(freshPartitions.toSorted(), [0, 1]);
  } finally {
    release();
    await fresh.disconnect().catch(() => {});
    await stuck.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});

async function subscribe(consumer: Consumer, topic: string): Promise<void> {
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
}

/** A kafkajs-shaped error: a protocol error carries its Kafka error `type`, a network error its `name`. */
function kafkaError(message: string, fields: { type?: string; name?: string }): Error {
  const error = new Error(message) as Error & { type?: string };
  if (fields.name !== undefined) error.name = fields.name;
  if (fields.type !== undefined) error.type = fields.type;
  return error;
}

Deno.test("a join that fails while the coordinator loads the group or moves is tried again in place until it succeeds", async () => {
  const failures = [
    kafkaError("The coordinator is loading and hence can't process requests for this group", {
      type: "GROUP_LOAD_IN_PROGRESS",
    }),
    kafkaError("The group coordinator is not available", { type: "GROUP_COORDINATOR_NOT_AVAILABLE" }),
    kafkaError("Connection error: connect ECONNREFUSED 127.0.0.1:9092", { name: "KafkaJSConnectionError" }),
  ];
  let attempts = 0;
  await joinWhileCoordinatorMoves(
    () => {
      const failure = failures[attempts++];
      return failure === undefined ? Promise.resolve() : Promise.reject(failure);
    },
    5_000,
    10,
  );
  assertEquals(attempts, 4);
});

/** A join that fails every time, with `error(attempt)`, and counts its attempts. */
function failingJoin(error: (attempt: number) => Error): { attempts: number; join(): Promise<void> } {
  const counted = { attempts: 0, join: () => Promise.reject(error(++counted.attempts)) };
  return counted;
}

Deno.test("a join that fails for another reason is not tried again: the error is thrown at once", async () => {
  const refused = kafkaError("The group member's supported protocols are incompatible", {
    type: "INCONSISTENT_GROUP_PROTOCOL",
  });
  const failing = failingJoin(() => refused);
  const thrown = await joinWhileCoordinatorMoves(failing.join, 5_000, 10).catch((error) => error);
  assertEquals([thrown, failing.attempts], [refused, 1]);
});

Deno.test("a coordinator that stays unavailable: the join gives up when the time is up, with the last error", async () => {
  const failing = failingJoin((attempt) =>
    kafkaError(`attempt ${attempt}`, { type: "GROUP_LOAD_IN_PROGRESS" })
  );
  const started = Date.now();
  const thrown = await joinWhileCoordinatorMoves(failing.join, 200, 50).catch((error) => error as Error);
  const { attempts } = failing;
  assertEquals((thrown as Error).message, `attempt ${attempts}`);
  assertEquals(attempts >= 2 && attempts <= 5, true, `${attempts} attempts in 200 ms with 50 ms pauses`);
  assertEquals(Date.now() - started < 5_000, true, "gave up long after its time");
});

Deno.test("a join retried while the coordinator moves: a wrapped cause counts, and a stopping consumer ends the tries", async () => {
  // kafkajs wraps the last error of its own retries, e.g. a coordinator look-up refused every time.
  const exhausted = new Error("Connection error: connect ECONNREFUSED 127.0.0.1:9092", {
    cause: kafkaError("Connection error: connect ECONNREFUSED 127.0.0.1:9092", {
      name: "KafkaJSConnectionError",
    }),
  });
  exhausted.name = "KafkaJSNumberOfRetriesExceeded";
  let attempts = 0;
  await joinWhileCoordinatorMoves(
    () => attempts++ === 0 ? Promise.reject(exhausted) : Promise.resolve(),
    5_000,
    10,
  );
  assertEquals(attempts, 2);

  const loading = kafkaError("The coordinator is loading", { type: "GROUP_LOAD_IN_PROGRESS" });
  const failing = failingJoin(() => loading);
  const thrown = await joinWhileCoordinatorMoves(failing.join, 5_000, 10, () => false).catch((error) =>
    error
  );
  assertEquals([thrown, failing.attempts], [loading, 1]);
});
