/**
 * The benchmark of the agent (`monitor check`), against a local target server and the local broker.
 *
 * Steady phase: 30,000 sites, each every 10 s (3,000 probes per second), for `seconds` (default 70; the first
 * 10 s summary window is warm-up): probes per second, schedule lag p50/p99/max, results dropped (and the
 * messages counted back on the topic), peak RSS.
 *
 * Max-rate phase: 20,000 sites every 1 s (demand above capacity) at a fixed concurrency, then a bare `fetch`
 * loop (a fresh connection per request, the same concurrency, the same server, the same duration): the
 * agent's sustained probes per second as a ratio to the bare loop's requests per second.
 *
 * Run alone with `deno run -A bench/check_bench.ts [--seconds 70] [--max-rate-seconds 25] [--concurrency 64]
 * [--phase all|steady|max] [--cpu-prof DIR]`; writes `bench/results/check.json`.
 *
 * @module
 */
import { type AgentRun, runAgent, type Summary } from "./check_agent.ts";
import { machineInfo, readCpuSeconds } from "./check_procfs.ts";
import {
  countAndDeleteTopic,
  ensureBroker,
  startTargetServer,
  type TargetServer,
  writeSites,
} from "./check_setup.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BROKERS = "127.0.0.1:9092";
const RESULTS = `${ROOT}bench/results/check.json`;

/** The targets of the issue, on a 2-core machine with server and broker on it too. */
export const TARGETS = { lag_p99_ms: 50, dropped: 0, peak_rss_mib: 300, max_rate_ratio: 0.8 } as const;

/** Options of {@linkcode runCheckBench}. */
export interface CheckBenchOptions {
  /** Length of the steady phase in seconds, warm-up window included (at least 20). Default 70. */
  readonly seconds?: number;
  /** Length of the max-rate runs (agent, then bare loop) in seconds, 5 s warm-up included. Default 25. */
  readonly maxRateSeconds?: number;
  /** Concurrency of the max-rate phase, for the agent and the bare loop alike. Default 64. */
  readonly concurrency?: number;
  /** Concurrency of the steady phase. Default 500, the agent's default. */
  readonly steadyConcurrency?: number;
  /** Which phases to run. Default "all". */
  readonly phase?: "all" | "steady" | "max";
  /** Where the agent writes V8 CPU profiles (`deno run --cpu-prof`); none when absent. */
  readonly cpuProfDir?: string;
  /** Whether to write `bench/results/check.json`. Default true. */
  readonly write?: boolean;
}

/** Figures over the measured windows (all but the first) of one agent run. */
export function aggregate(run: AgentRun, warmupWindows = 1): Record<string, unknown> {
  const all = run.summaries;
  const measured = all.slice(warmupWindows);
  const startAt = all[warmupWindows - 1]?.time;
  const endAt = measured.at(-1)?.time;
  const seconds = startAt !== undefined && endAt !== undefined ? (endAt - startAt) / 1000 : 0;
  const sum = (pick: (s: Summary) => number) => measured.reduce((total, s) => total + pick(s), 0);
  const probes = sum((s) => s.probes);
  const last = all.at(-1);
  return {
    windows_measured: measured.length,
    seconds_measured: seconds,
    probes,
    probes_per_second: seconds > 0 ? Math.round(probes / seconds) : 0,
    up: sum((s) => s.up),
    down: sum((s) => s.down),
    skipped: sum((s) => s.skipped),
    lag_p50_ms: probes > 0 ? Math.round((sum((s) => s.lag_p50_ms * s.probes) / probes) * 10) / 10 : null,
    lag_p99_ms: Math.max(0, ...measured.map((s) => s.lag_p99_ms)),
    lag_max_ms: Math.max(0, ...measured.map((s) => s.lag_max_ms)),
    lag_p99_ms_per_window: measured.map((s) => s.lag_p99_ms),
    probes_per_window: all.map((s) => s.probes),
    outbox_max: Math.max(0, ...all.map((s) => s.outbox)),
    dropped_in_summaries: last?.dropped ?? 0,
    peak_rss_mib: Math.round(run.peakRssKb / 102.4) / 10,
    rss_mib_per_second: run.rssMib,
    cpu_cores: run.cpu,
    stopped: run.stopped,
    exit_code: run.exitCode,
    incomplete: run.incomplete,
    notes: run.notes,
  };
}

function uniqueTopic(phase: string): string {
  return `bench-check-${phase}-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 6)}`;
}

interface Context {
  readonly server: TargetServer;
  readonly brokerPid: number | null;
  readonly dir: string;
  readonly options: CheckBenchOptions;
}

async function steadyPhase(context: Context): Promise<Record<string, unknown>> {
  const seconds = Math.max(20, context.options.seconds ?? 70);
  const sites = 30_000;
  const sitesFile = `${context.dir}/steady.toml`;
  await writeSites(sitesFile, { count: sites, port: context.server.port, interval: "10s", timeout: "5s" });
  const topic = uniqueTopic("steady");
  console.log(`steady: ${sites} sites every 10 s for ${seconds} s, topic ${topic}`);
  const run = await runAgent({
    root: ROOT,
    sitesFile,
    brokers: BROKERS,
    topic,
    concurrency: context.options.steadyConcurrency ?? 500,
    summaryEverySeconds: 10,
    windows: Math.ceil(seconds / 10),
    neighbours: { server: context.server.pid, broker: context.brokerPid },
    ...(context.options.cpuProfDir
      ? { denoFlags: [`--cpu-prof`, `--cpu-prof-dir=${context.options.cpuProfDir}`] }
      : {}),
  });
  const onTopic = await countAndDeleteTopic(BROKERS, topic);
  return {
    sites,
    interval_s: 10,
    demand_per_second: sites / 10,
    concurrency: context.options.steadyConcurrency ?? 500,
    ...aggregate(run),
    messages_on_topic: onTopic,
  };
}

async function runBare(
  context: Context,
  seconds: number,
  concurrency: number,
): Promise<Record<string, unknown>> {
  const serverBefore = readCpuSeconds(context.server.pid);
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      `${ROOT}bench/bare_fetch.ts`,
      "--base",
      `http://127.0.0.1:${context.server.port}`,
      "--concurrency",
      String(concurrency),
      "--seconds",
      String(seconds),
      "--warmup",
      "5",
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((seconds + 60) * 1000),
  }).output();
  const serverAfter = readCpuSeconds(context.server.pid);
  const wall = (performance.now() - started) / 1000;
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    throw new Error(`Cannot run the bare fetch loop: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  const result = JSON.parse(text) as Record<string, unknown>;
  const cpu = Number(result.cpu_seconds);
  return {
    ...result,
    concurrency,
    cpu_cores: {
      bare: Math.round((cpu / Number(result.seconds)) * 100) / 100,
      server: serverBefore === null || serverAfter === null
        ? null
        : Math.round(((serverAfter - serverBefore) / wall) * 100) / 100,
    },
  };
}

async function maxRatePhase(context: Context): Promise<Record<string, unknown>> {
  const seconds = Math.max(15, context.options.maxRateSeconds ?? 25);
  const concurrency = context.options.concurrency ?? 64;
  const sites = 20_000;
  const sitesFile = `${context.dir}/max.toml`;
  await writeSites(sitesFile, { count: sites, port: context.server.port, interval: "1s", timeout: "1s" });
  const topic = uniqueTopic("max");
  console.log(
    `max rate: ${sites} sites every 1 s at concurrency ${concurrency} for ${seconds} s, topic ${topic}`,
  );
  const run = await runAgent({
    root: ROOT,
    sitesFile,
    brokers: BROKERS,
    topic,
    concurrency,
    summaryEverySeconds: 5,
    windows: Math.ceil(seconds / 5),
    neighbours: { server: context.server.pid, broker: context.brokerPid },
    ...(context.options.cpuProfDir
      ? { denoFlags: [`--cpu-prof`, `--cpu-prof-dir=${context.options.cpuProfDir}`] }
      : {}),
  });
  const agent: Record<string, unknown> = {
    ...aggregate(run),
    messages_on_topic: await countAndDeleteTopic(BROKERS, topic),
  };
  console.log(`max rate: bare fetch loop at concurrency ${concurrency} for ${seconds} s`);
  const bare = await runBare(context, seconds, concurrency);
  const agentRate = Number(agent.probes_per_second);
  const bareRate = Number(bare.rps);
  return {
    sites,
    interval_s: 1,
    demand_per_second: sites,
    concurrency,
    saturated: agentRate < sites * 0.9,
    agent,
    bare,
    ratio: bareRate > 0 ? Math.round((agentRate / bareRate) * 1000) / 1000 : null,
  };
}

/** Compares the figures with {@linkcode TARGETS}. */
export function verdicts(
  steady: Record<string, unknown> | null,
  max: Record<string, unknown> | null,
): Record<string, { value: unknown; target: string; met: boolean }> {
  const out: Record<string, { value: unknown; target: string; met: boolean }> = {};
  if (steady !== null) {
    const stopped = steady.stopped as AgentRun["stopped"];
    const rate = Number(steady.probes_per_second);
    out.steady_rate = {
      value: rate,
      target: ">= 0.98 x 3000/s, nothing skipped",
      met: rate >= 2940 && steady.skipped === 0,
    };
    out.lag_p99_ms = {
      value: steady.lag_p99_ms,
      target: `<= ${TARGETS.lag_p99_ms}`,
      met: Number(steady.lag_p99_ms) <= TARGETS.lag_p99_ms,
    };
    const lost = stopped === null ? null : stopped.probes - stopped.published;
    out.dropped = {
      value: {
        dropped: stopped?.dropped ?? null,
        unpublished: lost,
        probes: stopped?.probes ?? null,
        on_topic: steady.messages_on_topic,
      },
      target: "0 dropped, every probe published and on the topic",
      met: stopped !== null && stopped.dropped === 0 && lost === 0 &&
        steady.messages_on_topic === stopped.published,
    };
    out.peak_rss_mib = {
      value: steady.peak_rss_mib,
      target: `<= ${TARGETS.peak_rss_mib}`,
      met: Number(steady.peak_rss_mib) <= TARGETS.peak_rss_mib,
    };
  }
  if (max !== null) {
    out.max_rate_ratio = {
      value: max.ratio,
      target: `>= ${TARGETS.max_rate_ratio}`,
      met: Number(max.ratio) >= TARGETS.max_rate_ratio,
    };
  }
  return out;
}

function report(result: Record<string, unknown>): string {
  const lines = ["", "monitor check benchmark"];
  const steady = result.steady as Record<string, unknown> | null;
  const max = result.max_rate as Record<string, unknown> | null;
  if (steady) {
    lines.push(
      `  steady: ${steady.sites} sites / ${steady.interval_s} s, concurrency ${steady.concurrency}, ${steady.seconds_measured} s measured`,
      `    probes/s ${steady.probes_per_second} (up ${steady.up}, down ${steady.down}, skipped ${steady.skipped})`,
      `    schedule lag p50 ${steady.lag_p50_ms} ms, p99 ${steady.lag_p99_ms} ms, max ${steady.lag_max_ms} ms`,
      `    stopped ${JSON.stringify(steady.stopped)}, on topic ${steady.messages_on_topic}`,
      `    peak RSS ${steady.peak_rss_mib} MiB; CPU cores ${JSON.stringify(steady.cpu_cores)}`,
    );
  }
  if (max) {
    const agent = max.agent as Record<string, unknown>;
    const bare = max.bare as Record<string, unknown>;
    lines.push(
      `  max rate (concurrency ${max.concurrency}): agent ${agent.probes_per_second}/s, bare fetch ${bare.rps}/s, ratio ${max.ratio}`,
      `    agent CPU cores ${JSON.stringify(agent.cpu_cores)}, peak RSS ${agent.peak_rss_mib} MiB`,
      `    bare CPU cores ${JSON.stringify(bare.cpu_cores)}`,
    );
  }
  for (const [name, verdict] of Object.entries(result.targets as ReturnType<typeof verdicts>)) {
    lines.push(
      `  ${verdict.met ? "MET    " : "NOT MET"} ${name}: ${
        JSON.stringify(verdict.value)
      } (target ${verdict.target})`,
    );
  }
  return lines.join("\n");
}

/**
 * Runs the benchmark and returns its figures (also written to `bench/results/check.json`).
 *
 * @example
 * ```ts
 * const figures = await runCheckBench({ seconds: 70 });
 * ```
 */
export async function runCheckBench(options: CheckBenchOptions = {}): Promise<Record<string, unknown>> {
  const phase = options.phase ?? "all";
  const brokerPid = await ensureBroker(ROOT);
  const dir = await Deno.makeTempDir({ prefix: "monitor-check-bench-" });
  let server: TargetServer | null = null;
  try {
    server = await startTargetServer(ROOT);
    const context: Context = { server, brokerPid, dir, options };
    const steady = phase === "max" ? null : await steadyPhase(context);
    const max = phase === "steady" ? null : await maxRatePhase(context);
    const result: Record<string, unknown> = {
      benchmark: "check",
      machine: machineInfo(),
      command:
        `deno run --allow-net --allow-read --allow-env --allow-sys main.ts check --sites FILE --brokers ${BROKERS} ` +
        "--topic T --create-topic --partitions 6 --log-format json --summary-every 10s|5s --concurrency N",
      targets_spec: TARGETS,
      steady,
      max_rate: max,
      targets: verdicts(steady, max),
    };
    console.log(report(result));
    if (options.write ?? true) {
      await Deno.mkdir(`${ROOT}bench/results`, { recursive: true });
      await Deno.writeTextFile(RESULTS, JSON.stringify(result, null, 2) + "\n");
      console.log(`\n  written to ${RESULTS}`);
    }
    return result;
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function argValue(name: string): string | undefined {
  const index = Deno.args.indexOf(`--${name}`);
  return index === -1 ? undefined : Deno.args[index + 1];
}

if (import.meta.main) {
  const number = (name: string) => {
    const text = argValue(name);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`Cannot run as '--${name}' must be a positive integer: got '${text}'`);
    }
    return value;
  };
  const phase = argValue("phase") ?? "all";
  if (phase !== "all" && phase !== "steady" && phase !== "max") {
    throw new RangeError(`Cannot run as '--phase' must be all, steady or max: got '${phase}'`);
  }
  const options: Record<string, unknown> = { phase };
  for (
    const [flag, key] of [["seconds", "seconds"], ["max-rate-seconds", "maxRateSeconds"], [
      "concurrency",
      "concurrency",
    ], ["steady-concurrency", "steadyConcurrency"]] as const
  ) {
    const value = number(flag);
    if (value !== undefined) options[key] = value;
  }
  const profile = argValue("cpu-prof");
  if (profile !== undefined) options.cpuProfDir = profile;
  await runCheckBench(options as CheckBenchOptions);
}
