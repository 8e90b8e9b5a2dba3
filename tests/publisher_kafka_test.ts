/**
 * The publisher against a real broker behind a loopback proxy that loses the answer to a produce request
 * the broker has already written: the batch is sent again on the same idempotent producer, so the broker
 * drops the copy and every result is on the topic once.
 */
import { Kafka, logLevel } from "kafkajs";
import { assertEquals } from "./_assert.ts";
import { plainKafka, type PrivateBroker, readTopic, startPrivateBroker } from "./_kafka.ts";
import { KafkaProxy } from "./_kafka_proxy.ts";
import { Outbox } from "../src/check/outbox.ts";
import { type OutboxEntry, Publisher } from "../src/check/publisher.ts";
import { createLogger } from "../src/log.ts";
import { delay } from "../src/async.ts";

const kafkaTest = { sanitizeOps: false, sanitizeResources: false };
const encoder = new TextEncoder();

Deno.test(
  "a produce answer lost after the broker wrote the batch: the batch is sent again on the same producer and lands once",
  kafkaTest,
  async () => {
    const proxy = new KafkaProxy();
    let broker: PrivateBroker | null = null;
    const lines: string[] = [];
    const log = createLogger({ format: "json", write: (line) => lines.push(line) });
    const viaProxy = `127.0.0.1:${proxy.port}`;
    try {
      broker = await startPrivateBroker({
        extraConfig: (port) => {
          proxy.forwardTo({ hostname: "127.0.0.1", port });
          return `advertised.listeners=PLAINTEXT://${viaProxy},SSL://127.0.0.1:${
            port + 1
          },SASL_SSL://127.0.0.1:${port + 2}`;
        },
      });
      const topic = "lost-answer";
      // Connected before the fault: the proxy refuses new connections during the outage, not this one.
      const admin = plainKafka(viaProxy).admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });

      const outbox = new Outbox<OutboxEntry>(10_000);
      // The publisher's producer has retry settings of its own for its sends; the client's few, short ones
      // are for reconnecting, so that a send fails within the outage and the publisher's retry is tested.
      const kafka = new Kafka({
        brokers: [viaProxy],
        logLevel: logLevel.NOTHING,
        retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 },
      });
      const publisher = new Publisher(kafka, topic, outbox, log, { batchSize: 100 });
      const push = (from: number, count: number) => {
        for (let i = from; i < from + count; i++) {
          outbox.push({ key: `site-${i % 7}`, value: encoder.encode(JSON.stringify({ id: `r${i}` })) });
        }
      };
      push(0, 50);
      publisher.start();
      for (let waited = 0; publisher.published < 50 && waited < 20_000; waited += 50) await delay(50);
      assertEquals(publisher.published, 50);

      // The next batch is written by the broker, its answer is lost, and then nothing new gets through for
      // longer than kafkajs's own retries last, so the send fails and the publisher must try again later.
      // Meanwhile the topic grows to 12 partitions: the batch must go again to the partitions it went to.
      proxy.loseNextProduceAnswer(5_000);
      push(50, 80);
      for (let waited = 0; proxy.lostAnswers === 0 && waited < 10_000; waited += 20) await delay(20);
      assertEquals(proxy.lostAnswers, 1);
      await admin.createPartitions({ topicPartitions: [{ topic, count: 12 }] });
      push(130, 70); // waits in the outbox behind the lost batch
      for (let waited = 0; publisher.published < 200 && waited < 60_000; waited += 100) await delay(100);
      assertEquals(await publisher.stop(10_000), 0);
      await admin.disconnect();

      const failures = lines.map((line) => JSON.parse(line)).filter((entry) =>
        entry.message === "cannot publish; will retry"
      );
      assertEquals(
        failures.length > 0,
        true,
        `the send never failed: the fault did not happen\n${lines.join("\n")}`,
      );
      assertEquals(failures.every((entry) => entry.same_producer === true), true, lines.join("\n"));
      assertEquals(publisher.published, 200);
      const ids = (await readTopic(topic, 201, 8_000, viaProxy)).map((m) => JSON.parse(m.value!).id);
      assertEquals(ids.length, 200, "a result is on the topic twice");
      assertEquals(new Set(ids).size, 200);
    } finally {
      proxy.close();
      await broker?.destroy();
    }
  },
);
