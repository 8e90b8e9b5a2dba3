/**
 * The benchmark of the agent (`monitor check`), against a local target server and the local broker.
 *
 * Steady phase: 30,000 sites, each every 10 s (3,000 probes per second), for `seconds` (default 70; the first
 * 10 s summary window is warm-up): probes per second, schedule lag p50/p99/max, results dropped (and the
 * messages counted back on the topic), peak RSS.
 *
 * Max-rate phase: 20,000 sites every 1 s (demand above capacity) at a fixed concurrency, then a bare `fetch`
 * loop (a fresh connection per request, the same concurrency, the same server, the same duration): the
 * agent's sustained probes per second as a ratio to the bare loop's requests per second. Agent and bare loop
 * alternate for `rounds` rounds and the best of each counts, as other work on a shared machine only ever
 * lowers a rate; CPU time per request is reported too, as it depends little on such work.
 *
 * Before each run the benchmark waits (at most 30 s) for the machine to be quiet, and every run reports the
 * CPU that other processes used meanwhile (`cpu_cores.others`).
 *
 * Run alone with `deno run -A bench/check/main.ts [--seconds 70] [--max-rate-seconds 25] [--concurrency 64]
 * [--steady-concurrency 500] [--rounds 2] [--phase all|steady|max] [--cpu-prof DIR]`; writes
 * `bench/results/check.json`.
 *
 * @module
 */
import { type AgentRun, runAgent, type Summary } from "./agent.ts";
import { cpuShares, machineInfo, snapshotCpu, waitForQuietMachine } from "../procfs.ts";
import {
  countAndDeleteTopic,
  ensureBroker,
  startTargetServer,
  type TargetServer,
  writeSites,
} from "./setup.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
/** The broker of `dev/kafka.sh`, on `KAFKA_PORT` like the script (so a helper's own broker can be used). */
const BROKERS = `127.0.0.1:${Deno.env.get("KAFKA_PORT") ?? "9092"}`;
const RESULTS = `${ROOT}bench/results/check.json`;
/** CPU used by processes other than the agent, server, broker and bare loop above which a run is flagged. */
const OTHERS_WARNING_CORES = 0.25;

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
  /** Alternating agent and bare-loop rounds of the max-rate phase; the best of each counts. Default 2. */
  readonly rounds?: number;
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

/** Waits (at most 30 s) for other work on the machine to calm down, and says so when it does not. */
async function settle(what: string): Promise<{ quiet: boolean; busyCores: number | null }> {
  const state = await waitForQuietMachine({ timeoutMs: 30_000 });
  if (!state.quiet) {
    console.log(
      `  (${what}: the machine is still busy, ${state.busyCores} cores, after 30 s; running anyway)`,
    );
  }
  return state;
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
  const before = await settle("steady");
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
    busy_cores_before: before.busyCores,
  };
}

async function runBare(
  context: Context,
  seconds: number,
  concurrency: number,
): Promise<Record<string, unknown>> {
  const before = snapshotCpu({ server: context.server.pid, broker: context.brokerPid });
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      `${ROOT}bench/check/bare_fetch.ts`,
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
  const after = snapshotCpu({ server: context.server.pid, broker: context.brokerPid });
  if (!output.success) {
    throw new Error(`Cannot run the bare fetch loop: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  const result = JSON.parse(new TextDecoder().decode(output.stdout).trim()) as Record<string, unknown>;
  const bare = Number(result.cpu_seconds) / Number(result.seconds);
  // Over the whole run, warm-up included, as the bare process cannot be read once it has exited.
  const around = cpuShares(before, after);
  return {
    ...result,
    concurrency,
    cpu_cores: {
      ...around,
      bare: Math.round(bare * 100) / 100,
      others: around.others === null || around.others === undefined
        ? null
        : Math.max(0, Math.round((around.others - bare) * 100) / 100),
    },
  };
}

async function agentAtMaxRate(context: Context, sitesFile: string, seconds: number, concurrency: number) {
  const topic = uniqueTopic("max");
  const before = await settle("max rate, agent");
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
    topic,
    ...aggregate(run),
    messages_on_topic: await countAndDeleteTopic(BROKERS, topic),
    busy_cores_before: before.busyCores,
  };
  return agent;
}

function rateOf(run: Record<string, unknown>, rate: string): number {
  return Number(run[rate]) || 0;
}

async function maxRatePhase(context: Context): Promise<Record<string, unknown>> {
  const seconds = Math.max(15, context.options.maxRateSeconds ?? 25);
  const concurrency = context.options.concurrency ?? 64;
  const rounds = Math.max(1, context.options.rounds ?? 2);
  const sites = 20_000;
  const sitesFile = `${context.dir}/max.toml`;
  await writeSites(sitesFile, { count: sites, port: context.server.port, interval: "1s", timeout: "1s" });
  const agents: Record<string, unknown>[] = [];
  const bares: Record<string, unknown>[] = [];
  // Alternating rounds, best of each: other work on the machine only ever lowers a rate.
  for (let round = 1; round <= rounds; round++) {
    console.log(
      `max rate ${round}/${rounds}: agent, ${sites} sites every 1 s, concurrency ${concurrency}, ${seconds} s`,
    );
    agents.push(await agentAtMaxRate(context, sitesFile, seconds, concurrency));
    console.log(`max rate ${round}/${rounds}: bare fetch loop, concurrency ${concurrency}, ${seconds} s`);
    const before = await settle("max rate, bare loop");
    bares.push({ ...await runBare(context, seconds, concurrency), busy_cores_before: before.busyCores });
  }
  const agent = agents.reduce((best, run) =>
    rateOf(run, "probes_per_second") > rateOf(best, "probes_per_second") ? run : best
  );
  const bare = bares.reduce((best, run) => rateOf(run, "rps") > rateOf(best, "rps") ? run : best);
  const agentRate = rateOf(agent, "probes_per_second");
  const bareRate = rateOf(bare, "rps");
  // Per CPU-second of the process itself: steadier than the rates when other work shares the machine.
  const agentCpu = Number((agent.cpu_cores as Record<string, unknown>).agent);
  const bareCpu = Number((bare.cpu_cores as Record<string, unknown>).bare);
  const perCpu = agentCpu > 0 && bareCpu > 0 ? (agentRate / agentCpu) / (bareRate / bareCpu) : NaN;
  return {
    sites,
    interval_s: 1,
    demand_per_second: sites,
    concurrency,
    rounds,
    saturated: agentRate < sites * 0.9,
    agent_rates: agents.map((run) => rateOf(run, "probes_per_second")),
    bare_rates: bares.map((run) => rateOf(run, "rps")),
    agent,
    bare,
    ratio: bareRate > 0 ? Math.round((agentRate / bareRate) * 1000) / 1000 : null,
    cpu_us_per_probe: agentCpu > 0 ? Math.round(1e6 * agentCpu / agentRate) : null,
    cpu_us_per_bare_request: bareCpu > 0 ? Math.round(1e6 * bareCpu / bareRate) : null,
    ratio_per_cpu_second: Number.isFinite(perCpu) ? Math.round(perCpu * 1000) / 1000 : null,
    other_rounds: {
      agent: agents.filter((run) => run !== agent).map(({ rss_mib_per_second: _, ...rest }) => rest),
      bare: bares.filter((run) => run !== bare),
    },
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
      `    CPU per request: agent ${max.cpu_us_per_probe} us, bare ${max.cpu_us_per_bare_request} us; ` +
        `ratio per CPU-second ${max.ratio_per_cpu_second}`,
    );
  }
  const others = [
    steady?.cpu_cores,
    (max?.agent as Record<string, unknown> | undefined)?.cpu_cores,
    (max?.bare as Record<string, unknown> | undefined)?.cpu_cores,
  ]
    .map((cpu) => Number((cpu as Record<string, unknown> | undefined)?.others ?? 0));
  if (Math.max(...others) > OTHERS_WARNING_CORES) {
    lines.push(
      `  WARNING: other processes used up to ${
        Math.max(...others)
      } cores during the runs: the rates are disturbed`,
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

const NUMBER_FLAGS = {
  "seconds": "seconds",
  "max-rate-seconds": "maxRateSeconds",
  "concurrency": "concurrency",
  "steady-concurrency": "steadyConcurrency",
  "rounds": "rounds",
} as const;

/** Reads the options of a standalone run from its arguments. */
function parseArgs(args: readonly string[]): CheckBenchOptions {
  const value = (name: string) => {
    const index = args.indexOf(`--${name}`);
    return index === -1 ? undefined : args[index + 1];
  };
  const options: { -readonly [K in keyof CheckBenchOptions]: CheckBenchOptions[K] } = {};
  for (const [flag, key] of Object.entries(NUMBER_FLAGS)) {
    const text = value(flag);
    if (text === undefined) continue;
    const number = Number(text);
    if (!Number.isInteger(number) || number < 1) {
      throw new RangeError(`Cannot run as '--${flag}' must be a positive integer: got '${text}'`);
    }
    options[key] = number;
  }
  const phase = value("phase") ?? "all";
  if (phase !== "all" && phase !== "steady" && phase !== "max") {
    throw new RangeError(`Cannot run as '--phase' must be all, steady or max: got '${phase}'`);
  }
  options.phase = phase;
  const profile = value("cpu-prof");
  if (profile !== undefined) options.cpuProfDir = profile;
  return options;
}

if (import.meta.main) {
  await runCheckBench(parseArgs(Deno.args));
}
