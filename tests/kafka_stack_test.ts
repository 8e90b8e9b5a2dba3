import { Kafka, logLevel } from "kafkajs";
import { assertEquals, assertRejects } from "./_assert.ts";
import { BROKER, CERTS, createTopic, SASL_BROKER, SCRAM_PASSWORD, SCRAM_USER, SSL_BROKER } from "./_kafka.ts";

const ca = () => Deno.readTextFileSync(`${CERTS}/ca.pem`);

/** Produces one message and consumes it back in a consumer group through the given client. */
async function roundTrip(kafka: Kafka, label: string): Promise<{ key: string; value: string }> {
  const topic = await createTopic(`stack-${label}`);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ key: "site-a", value: `hello over ${label}` }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `stack-${label}-${crypto.randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no message within 20s")), 20_000);
      consumer.run({
        eachMessage: ({ message }) => {
          clearTimeout(timer);
          resolve({ key: String(message.key), value: String(message.value) });
          return Promise.resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
}

const options = { sanitizeOps: false, sanitizeResources: false };

Deno.test("kafkajs produces and consumes in a group over PLAINTEXT", options, async () => {
  const kafka = new Kafka({ clientId: "t", brokers: [BROKER], logLevel: logLevel.NOTHING });
  assertEquals(await roundTrip(kafka, "plain"), { key: "site-a", value: "hello over plain" });
});

Deno.test("kafkajs produces and consumes over SSL with a client certificate", options, async () => {
  const kafka = new Kafka({
    clientId: "t",
    brokers: [SSL_BROKER],
    logLevel: logLevel.NOTHING,
    ssl: {
      ca: ca(),
      cert: Deno.readTextFileSync(`${CERTS}/client.pem`),
      key: Deno.readTextFileSync(`${CERTS}/client.key`),
    },
  });
  assertEquals(await roundTrip(kafka, "ssl"), { key: "site-a", value: "hello over ssl" });
});

Deno.test("kafkajs produces and consumes over SASL_SSL with SCRAM-SHA-512", options, async () => {
  const kafka = new Kafka({
    clientId: "t",
    brokers: [SASL_BROKER],
    logLevel: logLevel.NOTHING,
    ssl: { ca: ca() },
    sasl: { mechanism: "scram-sha-512", username: SCRAM_USER, password: SCRAM_PASSWORD },
  });
  assertEquals(await roundTrip(kafka, "sasl"), { key: "site-a", value: "hello over sasl" });
});

Deno.test("the SSL listener refuses a client without a certificate", options, async () => {
  const kafka = new Kafka({
    clientId: "t",
    brokers: [SSL_BROKER],
    logLevel: logLevel.NOTHING,
    ssl: { ca: ca() },
    retry: { retries: 0 },
    connectionTimeout: 3000,
  });
  const admin = kafka.admin();
  await assertRejects(() => admin.connect().then(() => admin.listTopics()), Error);
  await admin.disconnect();
});

Deno.test("the SASL_SSL listener refuses a wrong password", options, async () => {
  const kafka = new Kafka({
    clientId: "t",
    brokers: [SASL_BROKER],
    logLevel: logLevel.NOTHING,
    ssl: { ca: ca() },
    sasl: { mechanism: "scram-sha-512", username: SCRAM_USER, password: "wrong" },
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  await assertRejects(() => admin.connect(), Error, /SASL SCRAM SHA512 authentication failed/);
  await admin.disconnect();
});
