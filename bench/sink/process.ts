/**
 * `monitor sink` as a child process for the sink benchmark: started with the permissions of the compiled
 * binary, its JSON log lines (stderr) collected with their arrival time; and CPU time read from /proc, for the
 * sink, its database backends and the whole machine.
 *
 * @module
 */
import { delay } from "../../src/async.ts";
import { type MachineCpu, readCpuSeconds, readMachineCpu } from "../procfs.ts";
import { PERMISSIONS } from "../../dev/permissions.ts";
import { BROKER } from "../../dev/services.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** One JSON log line of the sink. */
export interface LogLine {
  /** When the line arrived (Unix ms). */
  readonly received: number;
  readonly time: string;
  readonly level: string;
  readonly message: string;
  readonly [field: string]: unknown;
}

/** A running sink. */
export interface SinkProcess {
  readonly pid: number;
  /** When it was spawned (Unix ms). */
  readonly startedAt: number;
  /** The log lines so far. */
  readonly lines: LogLine[];
  /** Lines that were not JSON (a crash, a Deno warning). */
  readonly otherOutput: string[];
  /** Whether the process has ended. */
  readonly exited: boolean;
  /** The first line with this message, waiting at most `timeoutMs`; throws past it or if the sink exits. */
  waitFor(message: string, timeoutMs: number): Promise<LogLine>;
  /** SIGTERM, then SIGKILL after `graceMs`; returns the exit code. Safe to call twice. */
  stop(graceMs?: number): Promise<number>;
}

/** Options of {@linkcode startSink}. */
export interface SinkStart {
  readonly brokers: string;
  readonly topic: string;
  readonly group: string;
  readonly databaseUrl: string;
  readonly summaryEvery?: string;
  /** A folder for a V8 CPU profile of the sink (`deno run --cpu-prof`); none when absent. */
  readonly cpuProfDir?: string;
  /** More `deno run` flags, e.g. `--v8-flags=--max-semi-space-size=64`. */
  readonly denoFlags?: readonly string[];
  /** The entry file to run instead of this project's `main.ts`, e.g. a copy with a candidate change. */
  readonly entry?: string;
  /** More `monitor sink` flags, after the benchmark's own. */
  readonly sinkArgs?: readonly string[];
}

/** The command line the benchmark runs, for the results file. */
export function sinkCommandLine(summaryEvery = "5s"): string {
  return `deno run ${PERMISSIONS.join(" ")} main.ts sink --brokers ${BROKER} --topic T --group G ` +
    `--log-format json --summary-every ${summaryEvery}   (DATABASE_URL = a fresh database)`;
}

/** Starts `monitor sink`. */
export function startSink(options: SinkStart): SinkProcess {
  const env: Record<string, string> = { NO_COLOR: "1", DATABASE_URL: options.databaseUrl };
  for (const key of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const value = Deno.env.get(key);
    if (value !== undefined) env[key] = value;
  }
  // The allocator's settings pass through, so that their effect on the sink's memory can be measured.
  for (const [key, value] of Object.entries(Deno.env.toObject())) {
    if (key.startsWith("MALLOC_") || key === "GLIBC_TUNABLES") env[key] = value;
  }
  const profile = options.cpuProfDir === undefined
    ? []
    : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMISSIONS,
      ...profile,
      ...(options.denoFlags ?? []),
      options.entry ?? `${ROOT}main.ts`,
      "sink",
      "--brokers",
      options.brokers,
      "--topic",
      options.topic,
      "--group",
      options.group,
      "--log-format",
      "json",
      "--summary-every",
      options.summaryEvery ?? "5s",
      ...(options.sinkArgs ?? []),
    ],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const startedAt = Date.now();
  const lines: LogLine[] = [];
  const otherOutput: string[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stderr) {
      pending += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const text = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          lines.push({ ...JSON.parse(text), received: Date.now() });
        } catch {
          if (otherOutput.length < 200) otherOutput.push(text);
        }
      }
    }
  })();
  let exit: Promise<number> | null = null;
  const status = child.status.then((s) => s.code);
  let exited = false;
  status.then(() => exited = true);
  return {
    pid: child.pid,
    startedAt,
    lines,
    otherOutput,
    get exited() {
      return exited;
    },
    async waitFor(message, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.find((l) => l.message === message);
        if (line !== undefined) return line;
        if (exited) {
          throw new Error(
            `Cannot wait for '${message}': the sink exited: ${otherOutput.slice(-5).join("\n")}${
              lines.slice(-5).map((l) => JSON.stringify(l)).join("\n")
            }`,
          );
        }
        if (Date.now() > deadline) {
          throw new Error(`Cannot wait for '${message}': not logged in ${timeoutMs} ms`);
        }
        await delay(50);
      }
    },
    stop(graceMs = 15_000) {
      exit ??= (async () => {
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch {
            // Already gone.
          }
          const timer = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch {
              // Already gone.
            }
          }, graceMs);
          await status;
          clearTimeout(timer);
        }
        await reading;
        return await status;
      })();
      return exit;
    },
  };
}

/** CPU use between two readings: busy share of all cores, in percent. */
export function busyPercent(from: MachineCpu, to: MachineCpu): number {
  const total = to.total - from.total;
  return total > 0 ? Math.round(1000 * (to.busy - from.busy) / total) / 10 : 0;
}

/** CPU seconds of a set of processes, summed over those still readable; tracks their largest value seen. */
export class CpuTracker {
  readonly #last = new Map<number, number>();
  readonly #first = new Map<number, number>();

  /** Samples `pids` now; new pids start from their current value (their earlier CPU is not counted). */
  sample(pids: readonly number[], countFromZero = false): void {
    for (const pid of pids) {
      const seconds = readCpuSeconds(pid);
      if (seconds === null) continue;
      if (!this.#first.has(pid)) this.#first.set(pid, countFromZero ? 0 : seconds);
      this.#last.set(pid, seconds);
    }
  }

  /** CPU seconds used between each pid's first and last sample. */
  get seconds(): number {
    let sum = 0;
    for (const [pid, last] of this.#last) sum += last - this.#first.get(pid)!;
    return Math.round(sum * 100) / 100;
  }
}

/** The broker's process id from the broker script's pid file, or null. */
export function brokerPid(): number | null {
  try {
    const port = BROKER.split(":").at(-1);
    const pid = Number(Deno.readTextFileSync(`${ROOT}.kafka/${port}/kafka.pid`).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Where the CPU went during one phase: the machine as a whole, and the processes taking part (this benchmark,
 * the sink, its database backends, the broker). What is left over is other work on the machine: noise.
 */
export class PhaseMeter {
  readonly #machine = machineCpu();
  readonly #started = performance.now();
  readonly #bench = new CpuTracker();
  readonly #sink = new CpuTracker();
  readonly #backends = new CpuTracker();
  readonly #broker = new CpuTracker();
  readonly #brokerPid = brokerPid();

  constructor(private readonly sinkPid: number | null = null) {
    this.sample([]);
  }

  /** Samples every tracked process; `backendPids` are the database backends seen now (new ones count from 0). */
  sample(backendPids: readonly number[]): void {
    this.#bench.sample([Deno.pid]);
    if (this.sinkPid !== null) this.#sink.sample([this.sinkPid]);
    this.#backends.sample(backendPids, true);
    if (this.#brokerPid !== null) this.#broker.sample([this.#brokerPid]);
  }

  /** The figures since the meter was made. */
  finish(backendPids: readonly number[] = []): Record<string, number> {
    this.sample(backendPids);
    const machine = machineCpu();
    const seconds = (performance.now() - this.#started) / 1000;
    const busy = machine.busy - this.#machine.busy;
    const known = this.#bench.seconds + this.#sink.seconds + this.#backends.seconds + this.#broker.seconds;
    const round = (value: number) => Math.round(value * 100) / 100;
    return {
      wall_seconds: round(seconds),
      machine_busy_percent: busyPercent(this.#machine, machine),
      machine_busy_cpu_seconds: round(busy),
      bench_process_cpu_seconds: this.#bench.seconds,
      sink_cpu_seconds: this.#sink.seconds,
      database_backends_cpu_seconds: this.#backends.seconds,
      broker_cpu_seconds: this.#broker.seconds,
      other_cpu_seconds: round(Math.max(0, busy - known)),
    };
  }
}

/** The machine's CPU time now; zeros where `/proc/stat` cannot be read (the phase figures then read 0). */
function machineCpu(): MachineCpu {
  return readMachineCpu() ?? { busy: 0, total: 0 };
}
