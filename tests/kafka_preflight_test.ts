import { assertEquals } from "./_assert.ts";
import { classifyKafkaError, isReady } from "../src/kafka_preflight.ts";
import type { KafkaSettings } from "../src/kafka.ts";

const SETTINGS: KafkaSettings = {
  brokers: ["kafka-1:9094", "kafka-2:9094"],
  topic: "monitor.checks",
  clientId: "c",
  tls: {},
  sasl: { mechanism: "scram-sha-512", username: "monitor", password: "secret" },
};
const AT = "Cannot connect to Kafka at kafka-1:9094,kafka-2:9094";

/** kafkajs wraps the cause of a failed retry in `cause` (KafkaJSNumberOfRetriesExceeded). */
const wrapped = (cause: Record<string, unknown>) => ({
  name: "KafkaJSNumberOfRetriesExceeded",
  message: String(cause.message),
  cause,
});

/** [behaviour, the error, the condition] */
const TABLE: [string, unknown, ReturnType<typeof classifyKafkaError>][] = [
  [
    "a refused connection is worth waiting for",
    wrapped({
      name: "KafkaJSConnectionError",
      code: "ECONNREFUSED",
      message: "Connection error: connect ECONNREFUSED 10.0.0.1:9094",
    }),
    { kind: "unreachable", message: `${AT}: connect ECONNREFUSED 10.0.0.1:9094` },
  ],
  [
    "a certificate for another host name is not trusted, and --kafka-ca is named",
    wrapped({
      name: "KafkaJSConnectionError",
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
      message: "Connection error: Hostname/IP does not match certificate's altnames",
    }),
    {
      kind: "permanent",
      message:
        `${AT}: the broker's certificate is not trusted (Hostname/IP does not match certificate's altnames): ` +
        "set '--kafka-ca' to the CA that signed it",
    },
  ],
  [
    "a group the user may not use names the group flag",
    {
      name: "KafkaJSProtocolError",
      type: "GROUP_AUTHORIZATION_FAILED",
      message: "Not authorized to access group",
    },
    {
      kind: "permanent",
      message:
        `${AT}: user 'monitor' is not authorized to use the consumer group (GROUP_AUTHORIZATION_FAILED): ` +
        "grant it the ACLs, or check '--group' and '--sasl-username'",
    },
  ],
  [
    "a missing topic is named",
    {
      name: "KafkaJSProtocolError",
      type: "UNKNOWN_TOPIC_OR_PARTITION",
      message: "This server does not host this topic-partition",
    },
    {
      kind: "missing-topic",
      message:
        "Cannot publish to Kafka at kafka-1:9094,kafka-2:9094: topic 'monitor.checks' does not exist: " +
        "create it, or pass '--create-topic'",
    },
  ],
];

for (const [behaviour, error, condition] of TABLE) {
  Deno.test(`classifyKafkaError(): ${behaviour}`, () => {
    assertEquals(classifyKafkaError(error, SETTINGS), condition);
  });
}

Deno.test("isReady(): a missing topic is waited for by the sink, fatal to the agent unless it creates it", () => {
  const missing = { kind: "missing-topic", message: "Cannot publish: topic 't' does not exist" } as const;
  assertEquals(isReady(missing, { role: "sink" }), false);
  assertEquals(isReady(missing, { role: "agent", createTopic: true }), true);
  let thrown: unknown;
  try {
    isReady(missing, { role: "agent" });
  } catch (error) {
    thrown = error;
  }
  assertEquals([thrown instanceof Error, (thrown as Error).message], [true, missing.message]);
  assertEquals(isReady({ kind: "unreachable", message: "x" }, { role: "agent" }), false);
  assertEquals(isReady({ kind: "ok" }, { role: "sink" }), true);
});
