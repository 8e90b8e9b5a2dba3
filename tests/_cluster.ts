/**
 * A three-node Kafka cluster of a test's own (`dev/kafka.sh cluster`), on its own ports and data folder,
 * with the failures a test scripts: a clean stop, `kill -9`, a freeze (SIGSTOP) and a start of one node. Also where the group
 * coordinator and the partition leaders are.
 *
 * @module
 */
import { Kafka, logLevel } from "kafkajs";
import { waitFor } from "./_cli.ts";

const root = new URL("..", import.meta.url).pathname;

/** A running private cluster. */
export interface PrivateCluster {
  /** Every node's PLAINTEXT address, comma-separated. */
  readonly brokers: string;
  /** Node ids, 1..N. */
  readonly nodes: readonly number[];
  killNode(id: number): Promise<void>;
  /** SIGSTOP (`frozen` true) or SIGCONT: a hung broker, whose connections stay open and never answer. */
  freezeNode(id: number, frozen: boolean): Promise<void>;
  stopNode(id: number): Promise<void>;
  startNode(id: number): Promise<void>;
  /** Stops every node and removes the data folder. */
  destroy(): Promise<void>;
}

const NODE_PORT_STEP = 100;

async function script(args: string[], env: Record<string, string>, timeoutMs: number): Promise<void> {
  const output = await new Deno.Command("bash", {
    args: [`${root}dev/kafka.sh`, "cluster", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  if (!output.success) {
    throw new Error(
      `Cannot ${args.join(" ")} on the private cluster: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

function portsFree(ports: readonly number[]): boolean {
  const listeners: Deno.Listener[] = [];
  try {
    for (const port of ports) listeners.push(Deno.listen({ hostname: "127.0.0.1", port }));
    return true;
  } catch {
    return false;
  } finally {
    for (const listener of listeners) listener.close();
  }
}

/**
 * A first node port whose nodes' PLAINTEXT and controller ports (port, port+3, then +100 per node) are free:
 * `TEST_KAFKA_CLUSTER_PORT` when set, else one at random in 10000-19999 (below the ephemeral range).
 */
function freeClusterPort(nodes: number): number {
  const pinned = Deno.env.get("TEST_KAFKA_CLUSTER_PORT");
  const ports = (base: number) =>
    Array.from({ length: nodes }, (_, i) => [base + i * NODE_PORT_STEP, base + i * NODE_PORT_STEP + 3])
      .flat();
  if (pinned !== undefined) return Number(pinned);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * 90) * 100 + Math.floor(Math.random() * 24) * 4;
    if (base + nodes * NODE_PORT_STEP < 20_000 && portsFree(ports(base))) return base;
  }
  throw new Error(`Cannot find free ports for a ${nodes}-node cluster in 50 attempts`);
}

/** Starts a private cluster of `nodes` nodes and waits until it is ready. */
export async function startPrivateCluster(nodes = 3): Promise<PrivateCluster> {
  const port = freeClusterPort(nodes);
  const dir = await Deno.makeTempDir({ prefix: "monitor-kafka-cluster-" });
  const env = { KAFKA_CLUSTER_PORT: String(port), KAFKA_CLUSTER_DIR: dir, KAFKA_NODES: String(nodes) };
  const ids = Array.from({ length: nodes }, (_, i) => i + 1);
  const cluster: PrivateCluster = {
    brokers: ids.map((id) => `127.0.0.1:${port + (id - 1) * NODE_PORT_STEP}`).join(","),
    nodes: ids,
    killNode: (id) => script(["kill-node", String(id)], env, 40_000),
    async freezeNode(id, frozen) {
      const pid = Number((await Deno.readTextFile(`${dir}/node-${id}/kafka.pid`)).trim());
      Deno.kill(pid, frozen ? "SIGSTOP" : "SIGCONT");
    },
    stopNode: (id) => script(["stop-node", String(id)], env, 40_000),
    startNode: (id) => script(["start-node", String(id)], env, 130_000),
    async destroy() {
      await script(["stop"], env, 60_000).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await script(["start"], env, 150_000);
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
  return cluster;
}

/** A quiet kafkajs client on the cluster, for the test's own look-ups. */
export function clusterKafka(brokers: string): Kafka {
  return new Kafka({
    clientId: "monitor-cluster-test",
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000 },
  });
}

/** Java's `String.hashCode`, which Kafka uses to place a group on a `__consumer_offsets` partition. */
export function javaStringHash(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return hash;
}

/** The partition of `__consumer_offsets` that holds `group` (Kafka's `Utils.abs(hash) % partitions`). */
export function groupOffsetsPartition(group: string, partitions: number): number {
  return (javaStringHash(group) & 0x7fffffff) % partitions;
}

/** The node id of the group's coordinator: the leader of its `__consumer_offsets` partition. */
export async function groupCoordinator(kafka: Kafka, group: string): Promise<number> {
  const leaders = await partitionLeaders(kafka, "__consumer_offsets");
  const leader = leaders.get(groupOffsetsPartition(group, leaders.size));
  if (leader === undefined || leader < 0) throw new Error(`Cannot find the coordinator of group '${group}'`);
  return leader;
}

/** Each partition's leader node id. */
export async function partitionLeaders(kafka: Kafka, topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    return new Map(
      metadata.topics[0]!.partitions.map((partition) => [partition.partitionId, partition.leader]),
    );
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates `topic` with each partition on the nodes `replicas(partition)` names (the first leads), and waits
 * until every partition has a leader.
 */
export async function createLaidOutTopic(
  kafka: Kafka,
  topic: string,
  partitions: number,
  replicas: (partition: number) => number[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{
        topic,
        replicaAssignment: Array.from(
          { length: partitions },
          (_, p) => ({ partition: p, replicas: replicas(p) }),
        ),
      }],
      waitForLeaders: false,
    });
  } finally {
    await admin.disconnect();
  }
  await waitFor(
    async () => {
      const leaders = await partitionLeaders(kafka, topic).catch(() => new Map<number, number>());
      return leaders.size === partitions && [...leaders.values()].every((leader) => leader >= 0);
    },
    60_000,
    "the topic's partitions to have leaders",
  );
}

/** A quiet client of every node but `node`: it never asks a frozen node, so it sees what the others know. */
export function otherNodesKafka(cluster: PrivateCluster, node: number): Kafka {
  const addresses = cluster.brokers.split(",");
  return clusterKafka(cluster.nodes.filter((id) => id !== node).map((id) => addresses[id - 1]!).join(","));
}

/** Waits (up to 30 s) until the cluster has moved `partitions` of `topic` off the frozen `node`. */
export async function waitForMoveOff(
  cluster: PrivateCluster,
  topic: string,
  partitions: readonly number[],
  node: number,
): Promise<void> {
  await waitFor(
    async () => {
      const now = await partitionLeaders(otherNodesKafka(cluster, node), topic)
        .catch(() => new Map<number, number>());
      return partitions.every((partition) => {
        const leader = now.get(partition);
        return leader !== undefined && leader >= 0 && leader !== node;
      });
    },
    30_000,
    `the cluster to move partitions ${partitions} off the frozen node ${node}`,
  );
}
