/**
 * The publisher worker seen from the main thread (src/check/publisher_client.ts) against the real broker:
 * results cross the boundary and are published once each, `stop()` flushes and reports the worker's final
 * counts, an unreachable broker leaves results counted as undelivered within the drain time, a full outbox
 * in the worker drops and counts, and the worker's log lines reach the main thread's logger.
 */
import { assertEquals } from "./_assert.ts";
import { makeCheck } from "./_checks.ts";
import { BROKER, createTopic, readTopic } from "./_kafka.ts";
import { delay } from "../src/async.ts";
import type { KafkaSettings } from "../src/kafka.ts";
import { createLogger, type Logger, silentLogger } from "../src/log.ts";
import { PublisherClient } from "../src/check/publisher_client.ts";

function settings(topic: string, brokers = BROKER): KafkaSettings {
  return { brokers: [brokers], topic, clientId: "publisher-client-test", tls: null, sasl: null };
}

function client(topic: string, options: { brokers?: string; outboxSize?: number; log?: Logger } = {}) {
  return new PublisherClient({
    settings: settings(topic, options.brokers),
    outboxSize: options.outboxSize ?? 1_000,
    createTopic: false,
    partitions: 1,
    log: options.log ?? silentLogger,
  });
}

Deno.test("PublisherClient publishes every result once from its worker; stop() reports the final counts", async () => {
  const topic = await createTopic("publisher-client", 3);
  const publisher = client(topic);
  publisher.start();
  const sent = Array.from({ length: 600 }, (_, i) => makeCheck(`site-${i % 40}`, new Date(Date.now() + i)));
  for (const result of sent) publisher.push(result);
  const undelivered = await publisher.stop(15_000);
  assertEquals(undelivered, 0);
  assertEquals(publisher.stats(), { published: 600, resent: 0, outbox: 0, dropped: 0, failures: 0 });
  const messages = await readTopic(topic, 601, 8_000);
  assertEquals(messages.length, 600);
  const byId = new Map(messages.map((m) => [JSON.parse(m.value!).id, m]));
  assertEquals(byId.size, 600);
  for (const result of sent) {
    const message = byId.get(result.id)!;
    assertEquals([message.key, JSON.parse(message.value!)], [result.site, result]);
  }
});

Deno.test("PublisherClient.stop() with Kafka unreachable counts every result undelivered, in time", async () => {
  const publisher = client("unreachable", { brokers: "127.0.0.1:19999" });
  publisher.start();
  for (let i = 0; i < 25; i++) publisher.push(makeCheck(`site-${i}`, new Date()));
  const started = Date.now();
  const undelivered = await publisher.stop(500);
  // 500 ms, then at most 1 s for a send in flight and 2 s for the disconnect (Publisher.stop).
  const elapsed = Date.now() - started;
  assertEquals(elapsed < 4_500, true, `took ${elapsed} ms`);
  assertEquals(undelivered, 25);
  assertEquals(publisher.stats().published, 0);
  assertEquals(publisher.stats().outbox, 25);
});

Deno.test("PublisherClient: a full outbox in the worker drops the oldest, counts them and says so", async () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", write: (line) => lines.push(line) });
  // Never started: nothing leaves the outbox of 3.
  const publisher = client("never", { brokers: "127.0.0.1:19999", outboxSize: 3, log });
  for (let i = 0; i < 10; i++) publisher.push(makeCheck(`site-${i}`, new Date()));
  for (let i = 0; i < 50 && !lines.some((line) => line.includes("outbox full")); i++) await delay(100);
  const warning = JSON.parse(lines.find((line) => line.includes("outbox full"))!);
  assertEquals([warning.level, warning.message, warning.dropped, warning.outbox], [
    "warn",
    "outbox full: dropping the oldest results",
    7,
    3,
  ]);
  // The counts arrive before the warning.
  assertEquals(publisher.stats(), { published: 0, resent: 0, outbox: 3, dropped: 7, failures: 0 });
  assertEquals(await publisher.stop(0), 3);
});
