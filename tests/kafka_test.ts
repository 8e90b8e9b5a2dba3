import { logLevel } from "kafkajs";
import { assertEquals } from "./_assert.ts";
import { foldKafkaLogs } from "../src/kafka.ts";
import type { Logger } from "../src/log.ts";

/** A logger that keeps [level, message, fields]. */
function recorder(): { log: Logger; lines: [string, string, Record<string, unknown>][] } {
  const lines: [string, string, Record<string, unknown>][] = [];
  const keep = (level: string) => (message: string, fields: Record<string, unknown> = {}) => {
    lines.push([level, message, { ...fields }]);
  };
  return {
    log: { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") },
    lines,
  };
}

const entry = (level: logLevel, message: string, extra: Record<string, unknown> = {}) => ({
  namespace: "Connection",
  level,
  label: "ERROR",
  log: { timestamp: "2026-11-30T00:00:00.000Z", logger: "kafkajs", message, ...extra },
});

Deno.test("foldKafkaLogs() drops stack traces and logs a repeated condition once per doubling interval", () => {
  let now = 0;
  const { log, lines } = recorder();
  const write = foldKafkaLogs(log, () => now)();
  const refused = entry(logLevel.ERROR, "Connection error: connect ECONNREFUSED 127.0.0.1:1", {
    broker: "127.0.0.1:1",
    stack: "Error: connect ECONNREFUSED\n    at TCPConnectWrap.afterConnect",
  });
  // Ten a second for 8 s: logged at 0, then after 1 s, 2 s more, 4 s more.
  for (now = 0; now < 8_000; now += 100) write(refused);
  assertEquals(lines, [
    ["warn", "kafka: Connection error: connect ECONNREFUSED 127.0.0.1:1", { broker: "127.0.0.1:1" }],
    ["warn", "kafka: Connection error: connect ECONNREFUSED 127.0.0.1:1", {
      broker: "127.0.0.1:1",
      repeated: 9,
    }],
    ["warn", "kafka: Connection error: connect ECONNREFUSED 127.0.0.1:1", {
      broker: "127.0.0.1:1",
      repeated: 19,
    }],
    ["warn", "kafka: Connection error: connect ECONNREFUSED 127.0.0.1:1", {
      broker: "127.0.0.1:1",
      repeated: 39,
    }],
  ]);
});

Deno.test("foldKafkaLogs() keeps distinct conditions apart and starts over after a quiet minute", () => {
  let now = 0;
  const { log, lines } = recorder();
  const write = foldKafkaLogs(log, () => now)();
  write(entry(logLevel.WARN, "Crash: KafkaJSNumberOfRetriesExceeded", { error: "a" }));
  write(entry(logLevel.WARN, "Crash: KafkaJSNumberOfRetriesExceeded", { error: "b" }));
  write(entry(logLevel.WARN, "Crash: KafkaJSNumberOfRetriesExceeded", { error: "a" })); // folded
  now = 61_000;
  write(entry(logLevel.WARN, "Crash: KafkaJSNumberOfRetriesExceeded", { error: "a" }));
  now = 61_500;
  write(entry(logLevel.WARN, "Crash: KafkaJSNumberOfRetriesExceeded", { error: "a" })); // folded again
  assertEquals(lines.map(([level, , fields]) => [level, fields]), [
    ["warn", { error: "a" }],
    ["warn", { error: "b" }],
    ["warn", { error: "a", repeated: 1 }],
  ]);
});

Deno.test("foldKafkaLogs() sends INFO lines and the idempotent producer's retry notice to debug", () => {
  const { log, lines } = recorder();
  const write = foldKafkaLogs(log, () => 0)();
  write(entry(logLevel.INFO, "Starting"));
  write(entry(logLevel.WARN, "Limiting retries for the idempotent producer to Number.MAX_SAFE_INTEGER"));
  assertEquals(lines.map(([level, message]) => [level, message]), [
    ["debug", "kafka: Starting"],
    ["debug", "kafka: Limiting retries for the idempotent producer to Number.MAX_SAFE_INTEGER"],
  ]);
});
