import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  byteSize,
  ConfigError,
  durationFlag,
  KAFKA_FLAGS,
  parseFlags,
  positiveInteger,
  UsageError,
} from "../src/args.ts";
import { kafkaSettings } from "../src/kafka.ts";

const SPECS = {
  ...KAFKA_FLAGS,
  once: { type: "boolean" },
  concurrency: { type: "string", env: "MONITOR_CONCURRENCY" },
} as const;

Deno.test("parseFlags() takes a flag over its environment variable, and the variable when the flag is absent", () => {
  const env = { MONITOR_BROKERS: "env:9092", MONITOR_TOPIC: "from-env" };
  const flags = parseFlags(["--brokers", "flag:9092", "--once"], SPECS, env);
  assertEquals([flags.brokers, flags.topic, flags.once, flags.concurrency], [
    "flag:9092",
    "from-env",
    true,
    undefined,
  ]);
});

Deno.test("parseFlags() reads boolean variables and rejects a value that is not one", () => {
  assertEquals(parseFlags([], SPECS, { MONITOR_KAFKA_TLS: "yes" })["kafka-tls"], true);
  assertEquals(parseFlags([], SPECS, { MONITOR_KAFKA_TLS: "0" })["kafka-tls"], false);
  assertThrows(
    () => parseFlags([], SPECS, { MONITOR_KAFKA_TLS: "maybe" }),
    UsageError,
    "Cannot read environment variable MONITOR_KAFKA_TLS: expected true or false: got 'maybe'",
  );
});

Deno.test("parseFlags() rejects unknown flags, missing values and stray arguments", () => {
  assertThrows(
    () => parseFlags(["--nope"], SPECS, {}),
    UsageError,
    "Cannot parse arguments: unknown flag '--nope'",
  );
  assertThrows(
    () => parseFlags(["--brokers"], SPECS, {}),
    UsageError,
    "Cannot parse arguments: flag '--brokers' needs a value",
  );
  assertThrows(
    () => parseFlags(["extra"], SPECS, {}),
    UsageError,
    "Cannot parse arguments: unexpected argument 'extra'",
  );
});

Deno.test("positiveInteger() and durationFlag() name the flag and the value they reject", () => {
  assertEquals(positiveInteger("outbox", "250", 10), 250);
  assertEquals(positiveInteger("outbox", undefined, 10), 10);
  assertEquals(positiveInteger("retention", "0", 90, 0), 0);
  assertThrows(
    () => positiveInteger("outbox", "-3", 10),
    UsageError,
    "Cannot use flag '--outbox': expected a whole number of at least 1: got '-3'",
  );
  assertEquals(durationFlag("summary-every", "1m30s", 60_000), 90_000);
  assertThrows(() => durationFlag("summary-every", "soon", 60_000), UsageError);
});

Deno.test("byteSize() reads bytes, KiB and MiB, and names the flag and the value it rejects", () => {
  assertEquals(byteSize("fetch-max-bytes", "512KiB", 1), 524_288);
  assertEquals(byteSize("fetch-max-bytes", "16MiB", 1), 16_777_216);
  assertEquals(byteSize("fetch-max-bytes", "65536", 1), 65_536);
  assertEquals(byteSize("fetch-max-bytes", undefined, 1024), 1024);
  const expected = `expected a size such as "512KiB" or "4MiB", from 1024 bytes to 2047MiB`;
  for (const bad of ["4MB", "1.5MiB", "-1", "100", "2048MiB", ""]) {
    assertThrows(
      () => byteSize("fetch-max-bytes", bad, 1, 1024),
      UsageError,
      `Cannot use flag '--fetch-max-bytes': ${expected}: got '${bad}'`,
    );
  }
});

Deno.test("kafkaSettings() is null without brokers, and validates brokers, topic and SASL", async () => {
  assertEquals(await kafkaSettings(parseFlags([], SPECS, {}), {}, "c"), null);
  const plain = await kafkaSettings(parseFlags(["--brokers", "a:1, b:2"], SPECS, {}), {}, "c");
  assertEquals(plain, {
    brokers: ["a:1", "b:2"],
    topic: "monitor.checks",
    clientId: "c",
    tls: null,
    sasl: null,
  });
  const sasl = await kafkaSettings(
    parseFlags(["--brokers", "a:1", "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", "u"], SPECS, {}),
    { MONITOR_SASL_PASSWORD: "p" },
    "c",
  );
  assertEquals([sasl?.tls, sasl?.sasl], [{}, { mechanism: "scram-sha-256", username: "u", password: "p" }]);
  await assertRejectsUsage(
    ["--brokers", "nohostport"],
    "Cannot use flag '--brokers': expected host:port[,host:port...]: got 'nohostport'",
  );
  await assertRejectsUsage(
    ["--brokers", "a:1", "--topic", "bad topic"],
    "Cannot use flag '--topic': expected 1 to 249 letters, digits, '.', '_' or '-': got 'bad topic'",
  );
  await assertRejectsUsage(
    ["--brokers", "a:1", "--kafka-cert", "c.pem"],
    "Cannot use TLS client authentication: '--kafka-cert' and '--kafka-key' go together",
  );
  await assertRejectsUsage(
    ["--brokers", "a:1", "--sasl-mechanism", "gssapi", "--sasl-username", "u"],
    "Cannot use flag '--sasl-mechanism': expected plain, scram-sha-256 or scram-sha-512: got 'gssapi'",
  );
  // An unreadable or wrong TLS file is a ConfigError (tests/kafka_pem_test.ts).
  await assertRejects(
    () =>
      kafkaSettings(
        parseFlags(["--brokers", "a:1", "--kafka-ca", "/nonexistent/ca.pem"], SPECS, {}),
        {},
        "c",
      ),
    ConfigError,
    "Cannot read '--kafka-ca' file '/nonexistent/ca.pem': No such file or directory (os error 2)",
  );
});

async function assertRejectsUsage(args: string[], message: string | RegExp): Promise<void> {
  let caught: unknown;
  try {
    await kafkaSettings(parseFlags(args, SPECS, {}), { MONITOR_SASL_PASSWORD: "p" }, "c");
  } catch (error) {
    caught = error;
  }
  assertEquals(caught instanceof UsageError, true, `expected a UsageError for ${args.join(" ")}`);
  if (typeof message === "string") assertEquals((caught as Error).message, message);
  else assertEquals(message.test((caught as Error).message), true, (caught as Error).message);
}
