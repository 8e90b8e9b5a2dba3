/**
 * Runs `monitor check` as a process for the agent benchmark: waits for a number of summary lines on its
 * stderr (`--log-format json`), samples its memory every second and the CPU time of it and its neighbours
 * (target server, broker) over the measured windows, then stops it with SIGTERM and reads its `stopped` line.
 *
 * @module
 */
import { deadline, isTimeout } from "../../src/async.ts";
import { PERMISSIONS } from "../../dev/permissions.ts";
import { cpuShares, type CpuSnapshot, readMemory, snapshotCpu } from "../procfs.ts";

/** The permissions of the compiled binary (dev/permissions.sh). */

/** How long the agent may take to stop after SIGTERM before it is killed. Above its 15 s drain timeout. */
const STOP_TIMEOUT_MS = 30_000;
const MAX_LINES = 1_000_000;
const MAX_NOTES = 20;
const MAX_SAMPLES = 3_600;

/** One `summary` line: counts over one window, lag in milliseconds over that window. */
export interface Summary {
  /** When it was logged, epoch milliseconds. */
  readonly time: number;
  readonly probes: number;
  readonly up: number;
  readonly down: number;
  readonly skipped: number;
  readonly published: number;
  readonly outbox: number;
  readonly dropped: number;
  readonly lag_p50_ms: number;
  readonly lag_p99_ms: number;
  readonly lag_max_ms: number;
}

/** The agent's last line: totals since it started. */
export interface Stopped {
  readonly message: string;
  readonly probes: number;
  readonly published: number;
  readonly dropped: number;
  readonly undelivered: number;
}

/** Options of {@linkcode runAgent}. */
export interface AgentOptions {
  /** Project root, where `main.ts` is. */
  readonly root: string;
  readonly sitesFile: string;
  readonly brokers: string;
  readonly topic: string;
  readonly concurrency: number;
  readonly summaryEverySeconds: number;
  /** Summary lines to wait for; the first is warm-up, the rest are measured. */
  readonly windows: number;
  /** Processes whose CPU share is measured alongside the agent's, by label. */
  readonly neighbours: Readonly<Record<string, number | null>>;
  /** Extra `deno run` flags, e.g. `--cpu-prof`. */
  readonly denoFlags?: readonly string[];
}

/** What one run of the agent showed. */
export interface AgentRun {
  /** Every summary line, the warm-up window first. */
  readonly summaries: readonly Summary[];
  readonly stopped: Stopped | null;
  readonly exitCode: number | null;
  /** Largest resident set size seen, in KiB: the maximum of 1 s samples and the final high-water mark. */
  readonly peakRssKb: number;
  /** Resident set size sampled every second, in MiB. */
  readonly rssMib: readonly number[];
  /** Share of a core each process used over the measured windows (agent, then the neighbours). */
  readonly cpu: Record<string, number | null>;
  /** Warnings, errors and lines that are not JSON (first few), to explain a bad run. */
  readonly notes: readonly string[];
  /** Whether the agent logged fewer summaries than asked for before the deadline. */
  readonly incomplete: boolean;
}

function numberField(object: Record<string, unknown>, key: string): number {
  const value = object[key];
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** The environment of the agent: the caller's, without MONITOR_* settings that would change the run. */
function agentEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const [key, value] of Object.entries(Deno.env.toObject())) {
    if (!key.startsWith("MONITOR_")) env[key] = value;
  }
  return env;
}

/**
 * Runs the agent until it has logged `windows` summaries (or a deadline of the windows plus a minute passed,
 * or it exited), then stops it.
 */
export async function runAgent(options: AgentOptions): Promise<AgentRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMISSIONS,
      ...(options.denoFlags ?? []),
      `${options.root}main.ts`,
      "check",
      "--sites",
      options.sitesFile,
      "--brokers",
      options.brokers,
      "--topic",
      options.topic,
      "--create-topic",
      "--partitions",
      "6",
      "--log-format",
      "json",
      "--summary-every",
      `${options.summaryEverySeconds}s`,
      "--concurrency",
      String(options.concurrency),
    ],
    cwd: options.root,
    env: agentEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const pids = { agent: child.pid, ...options.neighbours };
  const summaries: Summary[] = [];
  const notes: string[] = [];
  let stopped: Stopped | null = null;
  const cpuAt: { first: CpuSnapshot | null; last: CpuSnapshot | null } = { first: null, last: null };
  let enough = () => {};
  const enoughSummaries = new Promise<void>((resolve) => enough = resolve);

  const onLine = (line: string) => {
    let object: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== "object" || parsed === null) throw new TypeError("not an object");
      object = parsed as Record<string, unknown>;
    } catch {
      if (line.trim() !== "" && notes.length < MAX_NOTES) notes.push(line);
      return;
    }
    const message = String(object.message);
    if (message === "summary") {
      summaries.push({
        time: Date.parse(String(object.time)),
        probes: numberField(object, "probes"),
        up: numberField(object, "up"),
        down: numberField(object, "down"),
        skipped: numberField(object, "skipped"),
        published: numberField(object, "published"),
        outbox: numberField(object, "outbox"),
        dropped: numberField(object, "dropped"),
        lag_p50_ms: numberField(object, "lag_p50_ms"),
        lag_p99_ms: numberField(object, "lag_p99_ms"),
        lag_max_ms: numberField(object, "lag_max_ms"),
      });
      if (summaries.length === 1) cpuAt.first = snapshotCpu(pids);
      if (summaries.length === options.windows) {
        cpuAt.last = snapshotCpu(pids);
        enough();
      }
    } else if (message.startsWith("stopped")) {
      stopped = {
        message,
        probes: numberField(object, "probes"),
        published: numberField(object, "published"),
        dropped: numberField(object, "dropped"),
        undelivered: numberField(object, "undelivered"),
      };
    } else if ((object.level === "warn" || object.level === "error") && notes.length < MAX_NOTES) {
      notes.push(line);
    }
  };

  const pump = (async () => {
    let buffer = "";
    let lines = 0;
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += text;
      for (let newline = buffer.indexOf("\n"); newline !== -1; newline = buffer.indexOf("\n")) {
        if (lines++ < MAX_LINES) onLine(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
    }
    if (buffer !== "") onLine(buffer);
  })();

  let peakRssKb = 0;
  const rssMib: number[] = [];
  const sample = () => {
    const memory = readMemory(child.pid);
    if (memory === null) return;
    peakRssKb = Math.max(peakRssKb, memory.rssKb, memory.hwmKb);
    if (rssMib.length < MAX_SAMPLES) rssMib.push(Math.round(memory.rssKb / 1024));
  };
  const sampler = setInterval(sample, 1_000);
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    return status;
  });
  try {
    const deadlineMs = (options.windows * options.summaryEverySeconds + 60) * 1000;
    await deadline(Promise.race([enoughSummaries, status]), deadlineMs).catch((error) => {
      if (!isTimeout(error)) throw error;
    });
    sample();
    clearInterval(sampler);
    if (!exited) child.kill("SIGTERM");
    const stoppedInTime = await deadline(status.then(() => true), STOP_TIMEOUT_MS).catch((error) => {
      if (!isTimeout(error)) throw error;
      return false;
    });
    if (!stoppedInTime) {
      notes.push(`agent did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM; killed`);
      child.kill("SIGKILL");
    }
    const { code } = await status;
    await pump;
    return {
      summaries,
      stopped,
      exitCode: code,
      peakRssKb,
      rssMib,
      cpu: cpuAt.first !== null && cpuAt.last !== null ? cpuShares(cpuAt.first, cpuAt.last) : {},
      notes,
      incomplete: summaries.length < options.windows,
    };
  } finally {
    clearInterval(sampler);
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch {
        // It exited meanwhile.
      }
      await status;
    }
  }
}
