/**
 * What the benchmarks read from Linux's `/proc`: resident memory and CPU time of a process, CPU time of the
 * machine, and a description of it. Every reader returns null when the process is gone or the file unreadable.
 *
 * @module
 */
import { delay } from "../src/async.ts";

/** Clock ticks per second of `/proc/PID/stat` times (USER_HZ, 100 on every Linux we run on). */
const CLOCK_TICKS = 100;

/** Resident set size now and its high-water mark, in KiB, from `/proc/PID/status`. */
export interface Memory {
  readonly rssKb: number;
  readonly hwmKb: number;
}

/**
 * Reads `VmRSS` and `VmHWM` of process `pid`.
 *
 * @example
 * ```ts
 * const memory = readMemory(Deno.pid); // { rssKb: 51234, hwmKb: 52000 }
 * ```
 */
export function readMemory(pid: number): Memory | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(text);
  if (rss === null || hwm === null) return null;
  return { rssKb: Number(rss[1]), hwmKb: Number(hwm[1]) };
}

/**
 * CPU time (user + system) process `pid` has used so far, in seconds, from `/proc/PID/stat`.
 *
 * @example
 * ```ts
 * const before = readCpuSeconds(Deno.pid);
 * ```
 */
export function readCpuSeconds(pid: number): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / CLOCK_TICKS;
}

/** CPU time of the whole machine (all cores) so far, in seconds: busy (steal included) and in total. */
export interface MachineCpu {
  readonly busy: number;
  readonly total: number;
}

/** Reads {@linkcode MachineCpu} from `/proc/stat`. */
export function readMachineCpu(): MachineCpu | null {
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/stat");
  } catch {
    return null;
  }
  const fields = /^cpu\s+(.+)$/m.exec(text)?.[1]?.split(/\s+/).slice(0, 8).map(Number);
  if (fields === undefined || fields.length < 8 || fields.some((n) => !Number.isFinite(n))) return null;
  // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
  const total = fields.reduce((sum, n) => sum + n, 0);
  return { busy: (total - fields[3]! - fields[4]!) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

/** CPU time the whole machine has been busy so far (all cores, steal included), in seconds. */
export function readMachineBusySeconds(): number | null {
  return readMachineCpu()?.busy ?? null;
}

/** CPU seconds of several processes at one moment, by label. */
export type CpuSnapshot = { readonly at: number; readonly seconds: Readonly<Record<string, number | null>> };

/**
 * Reads the CPU time of every process of `pids` (label -> pid) at once, and of the whole machine (label
 * `machine`).
 */
export function snapshotCpu(pids: Readonly<Record<string, number | null>>): CpuSnapshot {
  const seconds: Record<string, number | null> = {};
  for (const [label, pid] of Object.entries(pids)) seconds[label] = pid === null ? null : readCpuSeconds(pid);
  seconds.machine = readMachineBusySeconds();
  return { at: performance.now(), seconds };
}

/**
 * The share of one core each process used between two snapshots (1.0 = one core busy all the time), rounded
 * to two decimals; null where either snapshot lacks the process. `machine` is every core together, and
 * `others` what the machine spent beyond the processes measured: other work that competed with the run.
 */
export function cpuShares(
  before: CpuSnapshot,
  after: CpuSnapshot,
): Record<string, number | null> {
  const wall = (after.at - before.at) / 1000;
  const shares: Record<string, number | null> = {};
  let processes = 0;
  for (const [label, start] of Object.entries(before.seconds)) {
    const end = after.seconds[label];
    const share = start === null || end === null || end === undefined || wall <= 0
      ? null
      : (end - start) / wall;
    shares[label] = share === null ? null : Math.round(share * 100) / 100;
    if (label !== "machine" && share !== null) processes += share;
  }
  const machine = shares.machine;
  shares.others = machine === null || machine === undefined
    ? null
    : Math.max(0, Math.round((machine - processes) * 100) / 100);
  return shares;
}

/** Where and with what the benchmark ran. */
export interface MachineInfo {
  readonly nproc: number;
  readonly cpu_model: string | null;
  readonly memory_total_mb: number | null;
  readonly kernel: string;
  readonly deno: string;
  readonly v8: string;
  readonly timestamp: string;
  /** The 1, 5 and 15 minute load averages when the benchmark started. */
  readonly loadavg_at_start: readonly number[] | null;
}

/** Describes this machine and Deno. */
export function machineInfo(): MachineInfo {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return null; // not Linux, or /proc hidden: the figures stand without these
    }
  };
  const total = /^MemTotal:\s+(\d+) kB$/m.exec(read("/proc/meminfo") ?? "")?.[1];
  return {
    nproc: navigator.hardwareConcurrency,
    cpu_model: /^model name\s*:\s*(.+)$/m.exec(read("/proc/cpuinfo") ?? "")?.[1]?.trim() ?? null,
    memory_total_mb: total === undefined ? null : Math.round(Number(total) / 1024),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    timestamp: new Date().toISOString(),
    loadavg_at_start: read("/proc/loadavg")?.split(" ").slice(0, 3).map(Number) ?? null,
  };
}

/** Options of {@linkcode waitForQuietMachine}. */
export interface QuietOptions {
  /** Busy cores (whole machine) at or under which it counts as quiet. Default 0.3. */
  readonly maxBusyCores?: number;
  /** Length of one measurement, in milliseconds. Default 2000. */
  readonly sampleMs?: number;
  /** How long to wait at most, in milliseconds. Default 60000. */
  readonly timeoutMs?: number;
}

/**
 * Waits until the machine is quiet (other work would disturb the measure), at most `timeoutMs`. Returns the
 * busy cores of the last sample and whether that was quiet.
 *
 * @example
 * ```ts
 * const { quiet, busyCores } = await waitForQuietMachine();
 * ```
 */
export async function waitForQuietMachine(
  { maxBusyCores = 0.3, sampleMs = 2_000, timeoutMs = 60_000 }: QuietOptions = {},
): Promise<{ quiet: boolean; busyCores: number | null }> {
  const deadline = performance.now() + timeoutMs;
  let busyCores: number | null = null;
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const before = readMachineBusySeconds();
    const start = performance.now();
    await delay(sampleMs);
    const after = readMachineBusySeconds();
    if (before === null || after === null) return { quiet: true, busyCores: null };
    busyCores = Math.round(((after - before) / ((performance.now() - start) / 1000)) * 100) / 100;
    if (busyCores <= maxBusyCores) return { quiet: true, busyCores };
    if (performance.now() >= deadline) break;
  }
  return { quiet: false, busyCores };
}
