/**
 * The sink's memory while it drains a backlog (issue 11): fills a topic once (or reuses one), then drains it
 * with `monitor sink` once per variant (fresh group and database each), and prints checks per second and the
 * peak resident set (`VmHWM`) of each. A variant is `NAME` or `NAME=ARGS`, where ARGS are more `monitor sink`
 * flags and `--v8-flags=...` for deno, separated by spaces; `NAME@ENTRY` runs another checkout's `main.ts`
 * (e.g. the code before a change, from `git worktree add /tmp/old REV`), so old and new run side by side.
 *
 * ```
 * TEST_KAFKA_BROKERS=127.0.0.1:27092 deno run -A bench/sink/memory.ts --checks 300000 default 'small=--fetch-max-bytes 4MiB'
 * TEST_KAFKA_BROKERS=127.0.0.1:27092 deno run -A bench/sink/memory.ts --topic bench-sink-memory-ab12 --checks 300000 default
 * deno run -A bench/sink/memory.ts --checks 1000000 before@/tmp/old/main.ts after
 * ```
 *
 * `--failures independent|outages` picks how down checks fall (bench/sink/data.ts; default independent).
 * `--cpu-prof DIR` writes each variant's V8 CPU profile to `DIR/NAME/`. The topic is kept for reuse (its name is printed); `--delete` deletes it at the end. The machine is shared:
 * checks per second are noisy, the peak RSS much less so.
 *
 * @module
 */
import { BROKER, createTopic, plainKafka } from "../../dev/services.ts";
import { failurePattern, fillTopic, newPlan } from "./data.ts";
import { drainPhase } from "./phases.ts";
import { takeOption } from "../args.ts";

const PARTITIONS = 6;
const SITES = 10_000;

const args = [...Deno.args];
const take = (flag: string) => takeOption(args, flag);
const checks = Number(take("--checks") ?? 300_000);
const reuse = take("--topic");
const cpuProfDir = take("--cpu-prof");
const failures = failurePattern(take("--failures"));
const deleteAt = args.indexOf("--delete");
if (deleteAt >= 0) args.splice(deleteAt, 1);
const variants = (args.length > 0 ? args : ["default"]).map((text) => {
  const [label = text, rest = ""] = text.split(/=(.*)/s);
  const [name = label, entry] = label.split(/@(.*)/s);
  const words = rest.split(/\s+/).filter((word) => word !== "");
  return {
    name,
    entry,
    denoFlags: words.filter((word) => word.startsWith("--v8-flags=")),
    sinkArgs: words.filter((word) => !word.startsWith("--v8-flags=")),
  };
});

const topic = reuse ?? await createTopic("bench-sink-memory", PARTITIONS, BROKER);
if (reuse === undefined) {
  console.error(`memory bench: filling ${topic} with ${checks} checks`);
  await fillTopic(BROKER, topic, newPlan(checks, SITES, failures));
}
console.error(`memory bench: topic ${topic} (reuse with --topic ${topic} --checks ${checks})`);
for (const variant of variants) {
  const result = await drainPhase({
    brokers: BROKER,
    topic,
    count: checks,
    denoFlags: variant.denoFlags,
    sinkArgs: variant.sinkArgs,
    ...(variant.entry === undefined ? {} : { entry: variant.entry }),
    ...(cpuProfDir === undefined ? {} : { cpuProfDir: `${cpuProfDir}/${variant.name}` }),
  });
  const ok = result.completed === true && result.exact_count === true && result.dead_letters === 0;
  const cpu = result.cpu as Record<string, number>;
  // CPU seconds per 100k checks: steadier than checks/s when other work shares the cores.
  const per100k = (seconds = NaN) => (seconds * 100_000 / checks).toFixed(2);
  console.log(
    `${variant.name.padEnd(16)} ${String(result.checks_per_second).padStart(7)} checks/s  peak RSS ` +
      `${String(result.peak_rss_mib).padStart(6)} MiB  CPU s per 100k: sink ${
        per100k(cpu.sink_cpu_seconds)
      }, ` +
      `PostgreSQL ${per100k(cpu.database_backends_cpu_seconds)}  batches ${result.batches}, mean ` +
      `${result.mean_batch}  other CPU ${cpu.other_cpu_seconds} s${ok ? "" : "  NOT ALL STORED"}` +
      `  [${[...variant.denoFlags, ...variant.sinkArgs].join(" ")}]`,
  );
  if (!ok) console.log(JSON.stringify(result.warnings));
}
if (deleteAt >= 0) {
  const admin = plainKafka(BROKER).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).finally(() => admin.disconnect());
}
