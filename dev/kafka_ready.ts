/**
 * Readiness of a local Kafka cluster, for `dev/kafka.sh cluster`: waits until every given node answers a
 * metadata request that lists every given node as a live broker. A KRaft broker is listed only once the
 * active controller has unfenced it, and a restarted node is unfenced only after it caught up with the
 * metadata log of the current quorum leader, so this also proves that the quorum has a leader.
 *
 *   deno run --allow-net --allow-env dev/kafka_ready.ts TIMEOUT_SECONDS ID@HOST:PORT...
 *
 * Exits 0 when ready, 1 with the last answer of each node when the time is up.
 *
 * @module
 */
import process from "node:process";
import { Kafka, logLevel } from "kafkajs";

/** One node: its id and PLAINTEXT address. */
export interface Node {
  readonly id: number;
  readonly address: string;
}

/** Parses `ID@HOST:PORT`. */
export function parseNode(text: string): Node {
  const match = /^(\d+)@(.+:\d+)$/.exec(text);
  if (match === null) throw new TypeError(`Cannot parse node '${text}': expected ID@HOST:PORT`);
  return { id: Number(match[1]), address: match[2]! };
}

/** Asks one node for the live brokers; returns a problem, or null when it lists every expected id. */
async function check(node: Node, expected: readonly number[]): Promise<string | null> {
  const kafka = new Kafka({
    clientId: "kafka-ready",
    brokers: [node.address],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 3_000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    const live = new Set(cluster.brokers.map((broker) => broker.nodeId));
    const missing = expected.filter((id) => !live.has(id));
    return missing.length === 0 ? null : `lists brokers [${[...live].sort()}], not yet [${missing}]`;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

if (import.meta.main) {
  // kafkajs computes some timer delays that come out negative; the clamping to 1 ms is what it expects.
  process.removeAllListeners("warning");
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if ((typeof warning === "string" ? rest[0] : warning.name) === "TimeoutNegativeWarning") return;
    (emit as (...args: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
  const [timeout, ...rest] = Deno.args;
  const nodes = rest.map(parseNode);
  const deadline = Date.now() + Number(timeout) * 1_000;
  const expected = nodes.map((node) => node.id);
  let problems: (string | null)[] = [];
  while (Date.now() < deadline) {
    problems = await Promise.all(nodes.map((node) => check(node, expected)));
    if (problems.every((problem) => problem === null)) Deno.exit(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  nodes.forEach((node, i) => console.error(`node ${node.id} (${node.address}): ${problems[i] ?? "ready"}`));
  Deno.exit(1);
}
