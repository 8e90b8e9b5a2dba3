/**
 * kafkajs connecting again to a broker that left a request unanswered lately (src/_kafkajs_reconnect.ts), on a
 * three-node cluster of the test's own: a frozen one fails the connection within a short probe, as a
 * connection error (which kafkajs answers by refreshing its metadata), where kafkajs alone would connect and
 * then wait out a whole request timeout on it; a live one answers the probe and is used as before. And on
 * the dev broker's TLS and SASL_SSL listeners, a live broker's probe on a new and on a reopened connection:
 * a SASL listener closes a connection that asks for the API versions twice before it authenticates.
 */
import { clusterKafka, createLaidOutTopic, partitionLeaders, startPrivateCluster } from "./_cluster.ts";
import { assertEquals } from "./_assert.ts";
import {
  CERTS,
  createTopic,
  readTopic,
  SASL_BROKER,
  SCRAM_PASSWORD,
  SCRAM_USER,
  SSL_BROKER,
} from "./_kafka.ts";
import { createKafka } from "../src/kafka.ts";
import { createLogger } from "../src/log.ts";
import { fixKafkajsReconnect, isSilent, markSilent, PROBE_MS } from "../src/_kafkajs_reconnect.ts";
import { fixKafkajsSilentBroker } from "../src/check/_kafkajs_silent_broker.ts";
import { PUBLISHER_REQUEST_TIMEOUT_MS } from "../src/check/publisher.ts";

/** A kafkajs broker, as far as the test uses it. */
interface KafkajsBroker {
  connect(): Promise<void>;
  metadata(topics: string[]): Promise<unknown>;
  disconnect(): Promise<void>;
}

/** kafkajs's cluster of brokers, as far as the test looks into it. */
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  readonly brokerPool: {
    readonly brokers: Record<string, KafkajsBroker>;
    findConnectedBroker(): Promise<unknown>;
  };
}

/** A kafkajs client's own cluster object (private to kafkajs: the one its producers and consumers use). */
function kafkajsCluster(kafka: object): KafkajsCluster {
  const create = Object.getOwnPropertySymbols(kafka).find((key) =>
    key.description === "private:Kafka:createCluster"
  );
  return (kafka as Record<symbol, (options: object) => KafkajsCluster>)[create!]!({});
}

/** The innermost cause of a kafkajs error (its retrier wraps the last one); an Error saying so for no error. */
function rootCause(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(`no error (it ended with ${String(error)})`);
  let root = error;
  for (let depth = 0; depth < 10 && root.cause instanceof Error; depth++) root = root.cause;
  return root;
}

Deno.test({
  name:
    "a broker that timed out lately is probed before a new or reopened connection is used: a frozen one " +
    "fails it within the probe, as a connection error, and a live one is used and its mark cleared; metadata " +
    "is then read from a broker that answers",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  fixKafkajsReconnect();
  fixKafkajsSilentBroker();
  const cluster = await startPrivateCluster(3);
  const topic = `reconnect-${Date.now().toString(36)}`;
  const addresses = cluster.brokers.split(",");
  const addressOf = (node: number) => {
    const [host = "", port = ""] = addresses[node - 1]!.split(":");
    return { host, port: Number(port) };
  };
  /** A quiet client with the agent's request timeout, seeded with `seeds` (node ids). */
  const kafkaOf = (seeds: readonly number[], options: { retries?: number } = {}) =>
    createKafka(
      {
        clientId: "reconnect-test",
        brokers: seeds.map((node) => addresses[node - 1]!),
        topic,
        tls: null,
        sasl: null,
      },
      createLogger({ format: "json", write: () => {} }),
      { requestTimeoutMs: PUBLISHER_REQUEST_TIMEOUT_MS, ...options },
    );
  /** A fresh producer with no retries, seeded with `seeds`. */
  const client = (seeds: readonly number[]) =>
    kafkaOf(seeds, { retries: 0 }).producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  let frozen = -1;
  let connected: KafkajsCluster | null = null;
  let reopened: KafkajsCluster | null = null;
  try {
    // Partition p led by node p + 1, on every node.
    await createLaidOutTopic(
      clusterKafka(cluster.brokers),
      topic,
      3,
      (p) => [0, 1, 2].map((i) => (p + i) % 3 + 1),
    );
    const leaders = await partitionLeaders(clusterKafka(cluster.brokers), topic);
    const [live, silent] = [leaders.get(1)!, leaders.get(0)!];

    // A client connected, before the freeze, to the node that will freeze and to no other (as the agent was
    // once the others had restarted and led nothing it wrote to); it knows the others from the metadata.
    connected = kafkajsCluster(kafkaOf([silent]));
    await connected.connect();
    await connected.refreshMetadata();
    // And one whose connections to that node kafkajs closed before the freeze: kafkajs opens a closed
    // connection again by itself, inside the next request on it, without connecting the broker.
    reopened = kafkajsCluster(kafkaOf([silent]));
    await reopened.connect();
    await reopened.refreshMetadata();
    const closedBroker = reopened.brokerPool.brokers[String(silent)]!;
    await closedBroker.disconnect();

    // A live broker marked silent answers the probe: the send goes through, and the mark is cleared.
    markSilent(addressOf(live));
    const first = client(cluster.nodes.filter((node) => node !== live));
    await first.connect();
    await first.send({ topic, messages: [{ partition: 1, value: "to a live broker" }] });
    await first.disconnect();
    assertEquals(isSilent(addressOf(live)), false, "a live broker's mark is cleared once it answers");

    // A frozen leader, marked as a timed-out request marks it. A fresh client learns of it from the metadata
    // the others give (they still name it leader: the cluster fences it only 9 s after it fell silent).
    frozen = silent;
    await cluster.freezeNode(frozen, true);
    markSilent(addressOf(frozen));
    const second = client(cluster.nodes.filter((node) => node !== frozen));
    await second.connect();
    const started = Date.now();
    const failure = await second.send({ topic, messages: [{ partition: 0, value: "to a frozen broker" }] })
      .then(() => null, (error: unknown) => error);
    const elapsed = Date.now() - started;
    await second.disconnect().catch(() => {});
    const cause = rootCause(failure);
    assertEquals(
      { name: cause.name, unanswered: /did not answer/.test(cause.message) },
      { name: "KafkaJSConnectionError", unanswered: true },
      `the send to the frozen leader failed with ${cause.name}: ${cause.message}`,
    );
    // Probes of 3 s (the connection's, and one that other metadata reads left on the broker's spare connection,
    // which the connection's close waits for), where kafkajs alone waits out the whole request timeout.
    assertEquals(
      elapsed < PUBLISHER_REQUEST_TIMEOUT_MS,
      true,
      `the send to the frozen leader failed after ${elapsed} ms, not within ${PROBE_MS} ms probes`,
    );
    assertEquals(isSilent(addressOf(frozen)), true, "the frozen broker stays marked");

    // A request on a connection that kafkajs opens again by itself is probed too: it fails as the connection
    // error of the probe, where it would wait out the whole request timeout on the frozen process (the likely
    // path of this test's one failure in CI: a produce that found the connection open as a failed probe
    // closed it).
    const reopenedAt = Date.now();
    const reopenFailure = await closedBroker.metadata([topic]).then(() => null, (error: unknown) => error);
    const reopenElapsed = Date.now() - reopenedAt;
    const reopenCause = rootCause(reopenFailure);
    assertEquals(
      { name: reopenCause.name, unanswered: /did not answer/.test(reopenCause.message) },
      { name: "KafkaJSConnectionError", unanswered: true },
      `a request on a reopened connection to the frozen broker ended with ${reopenCause.name}: ` +
        `${reopenCause.message}`,
    );
    assertEquals(
      reopenElapsed < PUBLISHER_REQUEST_TIMEOUT_MS,
      true,
      `a request on a reopened connection to the frozen broker failed after ${reopenElapsed} ms`,
    );

    // While a broker has timed out lately, the client connected before the freeze reads metadata from a broker
    // that answers, not from the frozen one (kafkajs alone picks a connected broker: here the frozen one).
    const frozenBroker = connected.brokerPool.brokers[String(frozen)];
    let askedFrozen = 0;
    for (let read = 0; read < 20; read++) {
      if (await connected.brokerPool.findConnectedBroker() === frozenBroker) askedFrozen++;
    }
    assertEquals(askedFrozen, 0, "metadata reads sent to the frozen broker, of 20");
  } finally {
    if (frozen > 0) await cluster.freezeNode(frozen, false).catch(() => {});
    await connected?.disconnect().catch(() => {});
    await reopened?.disconnect().catch(() => {});
    await cluster.destroy();
  }
});

Deno.test({
  name:
    "a live broker marked silent answers the probe over TLS with a client certificate and over SASL_SSL " +
    "(authenticated first), on new connections and on one kafkajs reopens: the mark is cleared",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  fixKafkajsReconnect();
  fixKafkajsSilentBroker();
  const topic = await createTopic("reconnect-tls");
  const tls = {
    ca: await Deno.readTextFile(`${CERTS}/ca.pem`),
    cert: await Deno.readTextFile(`${CERTS}/client.pem`),
    key: await Deno.readTextFile(`${CERTS}/client.key`),
  };
  const listeners = [
    { name: "SSL", broker: SSL_BROKER, tls, sasl: null },
    {
      name: "SASL_SSL",
      broker: SASL_BROKER,
      tls: { ca: tls.ca },
      sasl: { mechanism: "scram-sha-512" as const, username: SCRAM_USER, password: SCRAM_PASSWORD },
    },
  ];
  for (const { name, broker, tls, sasl } of listeners) {
    const [host = "", port = ""] = broker.split(":");
    const address = { host, port: Number(port) };
    const kafka = () =>
      createKafka(
        { clientId: "reconnect-test", brokers: [broker], topic, tls, sasl },
        createLogger({ format: "json", write: () => {} }),
        { requestTimeoutMs: PUBLISHER_REQUEST_TIMEOUT_MS, retries: 0 },
      );
    // New connections: the client's first (kafkajs asks for the API versions itself) and the broker's.
    markSilent(address);
    const producer = kafka().producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    try {
      await producer.connect();
      await producer.send({ topic, messages: [{ value: `over ${name}` }] });
    } finally {
      await producer.disconnect().catch(() => {});
    }
    assertEquals(isSilent(address), false, `the ${name} listener's mark is cleared (new connections)`);

    // A connection kafkajs opens again by itself inside a request (and authenticates there, for SASL).
    const cluster = kafkajsCluster(kafka());
    try {
      await cluster.connect();
      await cluster.refreshMetadata();
      const [only] = Object.values(cluster.brokerPool.brokers);
      await only!.connect();
      await only!.disconnect();
      markSilent(address);
      await only!.metadata([topic]);
    } finally {
      await cluster.disconnect().catch(() => {});
    }
    assertEquals(isSilent(address), false, `the ${name} listener's mark is cleared (a reopened connection)`);
  }
  const read = await readTopic(topic, 2);
  assertEquals(read.map((message) => message.value).sort(), ["over SASL_SSL", "over SSL"]);
});
