/**
 * The agent's publisher keeps publishing while one broker is hung (src/check/_kafkajs_silent_broker.ts), on a
 * three-node cluster of the test's own. Once the cluster has moved a frozen leader's partitions, the results
 * waiting for them are acknowledged by the new leaders before it wakes. Without the fix kafkajs sends them to
 * the frozen broker again and again, until it wakes or the metadata expires (5 minutes).
 */
import { waitFor } from "./_cli.ts";
import {
  clusterKafka,
  createLaidOutTopic,
  partitionLeaders,
  startPrivateCluster,
  waitForMoveOff,
} from "./_cluster.ts";
import { readTopic } from "./_kafka.ts";
import { assertEquals } from "./_assert.ts";
import { delay } from "../src/async.ts";
import { createKafka } from "../src/kafka.ts";
import { createLogger } from "../src/log.ts";
import { Outbox } from "../src/check/outbox.ts";
import { type OutboxEntry, Publisher, PUBLISHER_REQUEST_TIMEOUT_MS } from "../src/check/publisher.ts";

const PARTITIONS = 6;
/** Sites whose results the test publishes: enough keys to reach every partition. */
const SITES = 60;
/**
 * How soon after the cluster has moved the frozen node's partitions every result made until then must be
 * acknowledged: the send under way may have gone to the frozen node just before, and waits out one request
 * timeout; on a loaded machine the metadata read after it may wait out another on a slow healthy node (seen
 * once in CI, when the test files ran in parallel). Without the fix nothing is acknowledged until the node
 * wakes.
 */
const PUBLISH_AFTER_MOVE_MS = 2 * PUBLISHER_REQUEST_TIMEOUT_MS + 5_000;
const encoder = new TextEncoder();

Deno.test({
  name: "a frozen partition leader (SIGSTOP) holds the agent's results only until the cluster moves its " +
    "partitions: they are acknowledged by the new leaders before it wakes, and every one is on the topic",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const cluster = await startPrivateCluster(3);
  const topic = `silent-broker-${Date.now().toString(36)}`;
  const lines: string[] = [];
  const log = createLogger({ format: "json", write: (line) => lines.push(line) });
  const outbox = new Outbox<OutboxEntry>(100_000);
  // The agent's client (src/check/publisher_worker.ts).
  const kafka = createKafka(
    { clientId: "silent-broker-test", brokers: cluster.brokers.split(","), topic, tls: null, sasl: null },
    log,
    {
      requestTimeoutMs: PUBLISHER_REQUEST_TIMEOUT_MS,
    },
  );
  const publisher = new Publisher(kafka, topic, outbox, log);
  let made = 0;
  /** One result of every site, as the agent's probes would make them. */
  const probeAll = () => {
    for (let site = 0; site < SITES; site++) {
      outbox.push({ key: `site-${site}`, value: encoder.encode(`r${made++}`) });
    }
  };
  let frozen = -1;
  try {
    const lookups = clusterKafka(cluster.brokers);
    // Every partition on every node, so the cluster can move a frozen node's.
    await createLaidOutTopic(lookups, topic, PARTITIONS, (p) => [0, 1, 2].map((i) => (p + i) % 3 + 1));
    publisher.start();
    probeAll();
    await waitFor(() => publisher.published === made, 60_000, "the first results to be published");

    const leaders = await partitionLeaders(lookups, topic);
    frozen = leaders.get(0)!;
    const moved = [...leaders].filter(([, leader]) => leader === frozen).map(([partition]) => partition);
    await cluster.freezeNode(frozen, true);
    // Results keep coming while the node is frozen: one of every site every half second (bounded by the
    // move's own 30 s wait).
    let probing = true;
    const probes = (async () => {
      for (let round = 0; probing && round < 200; round++) {
        probeAll();
        await delay(500);
      }
    })();
    try {
      const frozenAt = Date.now();
      await waitForMoveOff(cluster, topic, moved, frozen);
      const movedAt = Date.now();
      const madeByMove = made;
      await waitFor(
        () => publisher.published >= madeByMove,
        PUBLISH_AFTER_MOVE_MS,
        `the ${madeByMove} results made until partitions ${moved} moved off node ${frozen} to be acknowledged`,
      ).catch((error) => {
        throw new Error(
          `${(error as Error).message}; acknowledged ${publisher.published}\n${lines.slice(-20).join("\n")}`,
        );
      });
      console.log(
        `partitions ${moved} moved off node ${frozen} ${
          movedAt - frozenAt
        } ms after the freeze; results made ` +
          `until then acknowledged ${Date.now() - movedAt} ms after that`,
      );
    } finally {
      probing = false;
      await probes;
    }

    await cluster.freezeNode(frozen, false);
    assertEquals(await publisher.stop(30_000), 0, "results left undelivered at stop");
    // A re-sent batch may be on the topic twice (the sink stores it once): read until every distinct
    // result is there, or nothing more comes.
    const values = new Set<string | null>();
    for (let read = made; values.size < made && read < 2 * made; read += made - values.size) {
      const messages = await readTopic(topic, read, 60_000, cluster.brokers.split(",")[0]);
      for (const message of messages) values.add(message.value);
      if (messages.length < read) break;
    }
    const missing = Array.from({ length: made }, (_, i) => `r${i}`).filter((value) => !values.has(value));
    assertEquals(missing.slice(0, 10), [], `${missing.length} of ${made} results are not on the topic`);
  } finally {
    if (frozen > 0) await cluster.freezeNode(frozen, false).catch(() => {});
    await publisher.stop(1_000).catch(() => {});
    await cluster.destroy();
  }
});
