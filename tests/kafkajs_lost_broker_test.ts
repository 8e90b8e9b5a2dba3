/**
 * A consumer with the sink's settings keeps reading while one broker is lost (src/sink/_kafkajs_lost_broker.ts),
 * on a three-node cluster of each test's own. A frozen partition leader: the partitions the cluster moves off it
 * are read from their new leaders before it wakes (without the fix kafkajs keeps the frozen broker as their
 * leader until the metadata expires, 5 minutes). A frozen coordinator: the other nodes' partitions are read at
 * once (without the fix every fetcher waits on the heartbeat in flight until it times out).
 */
import { Kafka, logLevel } from "kafkajs";
import { waitFor } from "./_cli.ts";
import {
  clusterKafka,
  createLaidOutTopic,
  groupCoordinator,
  otherNodesKafka,
  partitionLeaders,
  type PrivateCluster,
  startPrivateCluster,
  waitForMoveOff,
} from "./_cluster.ts";
import { delay } from "../src/async.ts";
import { assertEquals } from "./_assert.ts";
// @ts-types="./_kafkajs_errors.d.ts"
import { isRebalancing } from "kafkajs/src/errors.js";
import { fixKafkajsLostBroker, RejoinGroup, unreachableBroker } from "../src/sink/_kafkajs_lost_broker.ts";
import { createGroupConsumer, SINK_FETCH } from "../src/sink/group_consumer.ts";

/** How a test's topic is laid out: its partitions, and each one's replicas (the first leads). */
interface Layout {
  readonly partitions: number;
  replicas(partition: number, coordinator: number): number[];
}
/** The first test's topic: 6 partitions, each on every node, so the cluster can move a frozen node's. */
const REPLICATED: Layout = {
  partitions: 6,
  replicas: (partition) => [0, 1, 2].map((i) => (partition + i) % 3 + 1),
};
/**
 * The second's: 4 partitions on the two nodes that are not the group's coordinator, so freezing it holds no
 * partition back (Kafka would otherwise wait for the frozen replica before it lets anyone read a message).
 */
const AWAY_FROM_COORDINATOR: Layout = {
  partitions: 4,
  replicas: (partition, coordinator) => {
    const others = [1, 2, 3].filter((node) => node !== coordinator);
    return partition % 2 === 0 ? others : others.reverse();
  },
};
/** The sink's request timeout (src/sink/run.ts): how long a fetch waits on the frozen broker. */
const SINK_REQUEST_TIMEOUT_MS = 10_000;
/**
 * How soon the messages sent to the partitions moved off a frozen leader must be read: a fetch timing out on
 * the frozen broker, then one more if the metadata read just after still names it, with room.
 */
const READ_MOVED_MS = 2 * SINK_REQUEST_TIMEOUT_MS + 5_000;
/**
 * The frozen-coordinator test's request timeout (kafkajs's default): without the fix every fetcher waits this
 * long on the heartbeat in flight, far past {@linkcode READ_PAST_FROZEN_COORDINATOR_MS}.
 */
const COORDINATOR_TEST_REQUEST_TIMEOUT_MS = 30_000;
/** How soon after the freeze the messages sent to the other nodes must be read. */
const READ_PAST_FROZEN_COORDINATOR_MS = 12_000;

/** A three-node cluster, a topic and a consumer that has read from each of its partitions. */
interface Scenario {
  readonly cluster: PrivateCluster;
  readonly topic: string;
  readonly group: string;
  /** The node of the group's coordinator when the topic was made. */
  readonly coordinator: number;
  /** A client for the test's own look-ups. */
  readonly lookups: Kafka;
  /** The values the consumer has read. */
  readonly received: Set<string>;
  /** A client that never asks the frozen node. */
  healthy(frozen: number): Kafka;
}

/** Runs `body` with a consumer reading a topic of its own cluster; wakes every node and cleans up after. */
async function withConsumer(
  layout: Layout,
  requestTimeoutMs: number,
  body: (scenario: Scenario) => Promise<void>,
): Promise<void> {
  const { partitions } = layout;
  fixKafkajsLostBroker();
  const cluster = await startPrivateCluster(3);
  const topic = `lost-broker-${Date.now().toString(36)}`;
  const group = `lost-broker-${crypto.randomUUID().slice(0, 8)}`;
  const lookups = clusterKafka(cluster.brokers);
  // The sink's consumer settings (sessions, heartbeats every 3 s, fetch sizes, retries).
  const retired = new AbortController();
  const consumer = createGroupConsumer(
    new Kafka({
      clientId: "lost-broker-test",
      brokers: cluster.brokers.split(","),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2_000,
      requestTimeout: requestTimeoutMs,
    }),
    group,
    SINK_FETCH,
    retired.signal,
  );
  const received = new Set<string>();
  try {
    const admin = lookups.admin();
    await admin.connect();
    // The group's coordinator, known before the topic is laid out: asking for the group creates Kafka's
    // offsets topic, whose partition for the group has the coordinator as its leader.
    let coordinator = -1;
    await waitFor(
      async () => {
        await admin.describeGroups([group]).catch(() => {});
        coordinator = await groupCoordinator(lookups, group).catch(() => -1);
        return coordinator > 0;
      },
      60_000,
      "the group's coordinator",
    );
    await admin.disconnect();
    await createLaidOutTopic(lookups, topic, partitions, (p) => layout.replicas(p, coordinator));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      // As the sink: offsets are not committed to Kafka on the way (a commit to a frozen coordinator would hold
      // the batch).
      autoCommit: false,
      eachMessage: ({ message }) => {
        received.add(message.value!.toString());
        return Promise.resolve();
      },
    });
    await send(lookups, topic, new Map(Array.from({ length: partitions }, (_, p) => [p, `before-${p}`])));
    await waitFor(() => received.size === partitions, 60_000, "every partition's first message to be read");
    await body({
      cluster,
      topic,
      group,
      coordinator,
      lookups,
      received,
      healthy: (frozen) => otherNodesKafka(cluster, frozen),
    });
  } finally {
    for (const node of cluster.nodes) await cluster.freezeNode(node, false).catch(() => {});
    retired.abort();
    await consumer.disconnect().catch(() => {});
    await cluster.destroy();
  }
}

Deno.test({
  name: "a frozen partition leader (SIGSTOP) stops only its own fetches: partitions moved off it are read " +
    "from their new leaders before it wakes",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withConsumer(
    REPLICATED,
    SINK_REQUEST_TIMEOUT_MS,
    async ({ cluster, topic, coordinator, lookups, received, healthy }) => {
      // A partition leader that is not the group's coordinator (a frozen coordinator is the next test).
      const leaders = await partitionLeaders(lookups, topic);
      const frozen = [...leaders.values()].find((node) => node !== coordinator);
      if (frozen === undefined) {
        throw new Error(`every partition is led by the coordinator's node ${coordinator}`);
      }
      const moved = [...leaders].filter(([, leader]) => leader === frozen).map(([partition]) => partition);
      await cluster.freezeNode(frozen, true);

      // The cluster fences the silent broker and moves its partitions; a client that never asks the frozen
      // broker sees it and writes to the new leaders.
      await waitForMoveOff(cluster, topic, moved, frozen);
      const after = new Map(Array.from({ length: REPLICATED.partitions }, (_, p) => [p, `after-${p}`]));
      await send(healthy(frozen), topic, after);
      await readWithin(received, after, READ_MOVED_MS, `partitions ${moved} moved off node ${frozen}`);
    },
  );
});

/** Messages to every partition of the topic laid out away from the coordinator, `prefix-p` to partition p. */
function awayFromCoordinator(prefix: string): Map<number, string> {
  return new Map(Array.from({ length: AWAY_FROM_COORDINATOR.partitions }, (_, p) => [p, `${prefix}-${p}`]));
}

Deno.test({
  name: "a frozen group coordinator (SIGSTOP) holds no fetch: partitions on other nodes are read at once",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withConsumer(
    AWAY_FROM_COORDINATOR,
    COORDINATOR_TEST_REQUEST_TIMEOUT_MS,
    async ({ cluster, topic, group, coordinator, lookups, received, healthy }) => {
      // The topic was laid out away from this node: it must still be the coordinator, or the test proves nothing.
      assertEquals(await groupCoordinator(lookups, group), coordinator, "the group's coordinator moved");
      await cluster.freezeNode(coordinator, true);
      const frozenAt = Date.now();
      // Heartbeats go every 3 s: one is now waiting on the frozen coordinator.
      await delay(3_500);
      const during = awayFromCoordinator("during");
      await send(healthy(coordinator), topic, during);
      await readWithin(
        received,
        during,
        READ_PAST_FROZEN_COORDINATOR_MS - (Date.now() - frozenAt),
        "the other nodes",
      );
    },
  );
});

/** Waits until every value of `values` has been read; the error names what was read. */
async function readWithin(received: Set<string>, values: Map<number, string>, ms: number, what: string) {
  const expected = [...values.values()];
  await waitFor(
    () => expected.every((value) => received.has(value)),
    ms,
    `the messages sent to ${what} to be read`,
  )
    .catch((error) => {
      throw new Error(
        `${(error as Error).message}; read: ${expected.filter((value) => received.has(value))}`,
      );
    });
}

/** Sends each value to its partition. */
async function send(kafka: Kafka, topic: string, values: Map<number, string>): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages: [...values].map(([partition, value]) => ({ value, partition })) });
  } finally {
    await producer.disconnect();
  }
}

Deno.test("a rejoin the heartbeat asks for is one kafkajs's runner rejoins the group for", () => {
  const refused = Object.assign(new Error("Connection error: connect ECONNREFUSED 127.0.0.1:9092"), {
    name: "KafkaJSConnectionError",
  });
  const error = new RejoinGroup(
    "cannot reach the group coordinator, node 1 (…); the group is now at node 2",
    refused,
  );
  assertEquals(isRebalancing(error), true);
  assertEquals(error.retriable, true);
  assertEquals(error.cause, refused);
  assertEquals(
    error.message,
    "Rejoining the group: cannot reach the group coordinator, node 1 (…); the group is now at node 2",
  );
});

Deno.test("the broker a fetch could not reach: refused or silent, never a closed connection or another error", () => {
  const error = (name: string, broker?: string) => Object.assign(new Error("x"), { name, broker });
  assertEquals(unreachableBroker(error("KafkaJSConnectionError", "127.0.0.1:9092")), {
    host: "127.0.0.1",
    port: 9092,
  });
  assertEquals(unreachableBroker(error("KafkaJSRequestTimeoutError", "::1:19092")), {
    host: "::1",
    port: 19092,
  });
  assertEquals(unreachableBroker(error("KafkaJSConnectionClosedError", "127.0.0.1:9092")), null);
  assertEquals(unreachableBroker(error("KafkaJSProtocolError", "127.0.0.1:9092")), null);
  assertEquals(unreachableBroker(error("KafkaJSConnectionError")), null);
});
