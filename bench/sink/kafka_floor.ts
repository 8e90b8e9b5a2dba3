/**
 * The floor under the sink's memory that comes from kafkajs alone (issue 11): a process with the V8 flags
 * `monitor` runs with that only consumes a topic with the sink's consumer settings, decoding each value
 * with `decodeCheck` and keeping nothing (./raw.ts `rawConsume`), then prints its rate and its peak resident set
 * (`VmHWM`). No database, no queue, no writer: whatever the sink does on top of this comes on top of its peak.
 *
 * ```
 * TEST_KAFKA_BROKERS=127.0.0.1:9092 deno run -A bench/sink/kafka_floor.ts --topic T --checks 1000000
 * TEST_KAFKA_BROKERS=127.0.0.1:9092 deno run -A bench/sink/kafka_floor.ts --topic T --checks 1000000 --fetch-max-bytes 262144
 * ```
 *
 * `T` is a topic that bench/sink/memory.ts filled (it prints its name). `--fetch-max-bytes N` sets the fetch
 * (bytes; each partition gets half of it, as the sink's defaults do).
 *
 * @module
 */
import { PERMISSIONS } from "../../dev/permissions.ts";
import { BROKER } from "../../dev/services.ts";
import { readMemory } from "../procfs.ts";
import { rawConsume, SINK_FETCH } from "./raw.ts";
import { takeOption } from "../args.ts";

const args = [...Deno.args];
const topic = takeOption(args, "--topic");
const checks = Number(takeOption(args, "--checks") ?? 1_000_000);
const fetchMaxBytes = Number(takeOption(args, "--fetch-max-bytes") ?? SINK_FETCH.maxBytes);
const inChild = args.includes("--child");
if (topic === undefined) {
  throw new Error("kafka floor: --topic is required (a topic bench/sink/memory.ts filled)");
}

if (inChild) {
  const result = await rawConsume(BROKER, topic, checks, {
    ...SINK_FETCH,
    maxBytes: fetchMaxBytes,
    maxBytesPerPartition: Math.floor(fetchMaxBytes / 2),
  });
  const memory = readMemory(Deno.pid);
  console.log(JSON.stringify({
    checks: result.checks,
    checks_per_second: Math.round(result.checksPerSecond),
    peak_rss_mib: memory === null ? null : Math.round(memory.hwmKb / 102.4) / 10,
  }));
} else {
  // A process of its own, so that its peak is kafkajs's alone.
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      // All permissions (Deno asks for them to read /proc/self), and the V8 flags `monitor` runs with.
      "--allow-all",
      ...PERMISSIONS.filter((flag) => flag.startsWith("--v8-flags=")),
      import.meta.filename!,
      "--child",
      "--topic",
      topic,
      "--checks",
      `${checks}`,
      "--fetch-max-bytes",
      `${fetchMaxBytes}`,
    ],
    stderr: "inherit",
  }).output();
  if (!output.success) Deno.exit(1);
  const result = JSON.parse(new TextDecoder().decode(output.stdout));
  console.log(
    `kafkajs alone, fetch ${fetchMaxBytes} bytes: ${result.checks_per_second} checks/s, ` +
      `peak RSS ${result.peak_rss_mib} MiB`,
  );
}
