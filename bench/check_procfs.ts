/**
 * What the agent benchmark reads from Linux's `/proc`: resident memory and CPU time of a process, and a
 * description of the machine. Every reader returns null when the process is gone or the file unreadable.
 *
 * @module
 */

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
 * const before = readCpuSeconds(pid);
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

/** CPU seconds of several processes at one moment, by label. */
export type CpuSnapshot = { readonly at: number; readonly seconds: Readonly<Record<string, number | null>> };

/** Reads the CPU time of every process of `pids` (label -> pid) at once. */
export function snapshotCpu(pids: Readonly<Record<string, number | null>>): CpuSnapshot {
  const seconds: Record<string, number | null> = {};
  for (const [label, pid] of Object.entries(pids)) seconds[label] = pid === null ? null : readCpuSeconds(pid);
  return { at: performance.now(), seconds };
}

/**
 * The share of one core each process used between two snapshots (1.0 = one core busy all the time), rounded
 * to two decimals; null where either snapshot lacks the process.
 */
export function cpuShares(
  before: CpuSnapshot,
  after: CpuSnapshot,
): Record<string, number | null> {
  const wall = (after.at - before.at) / 1000;
  const shares: Record<string, number | null> = {};
  for (const [label, start] of Object.entries(before.seconds)) {
    const end = after.seconds[label];
    shares[label] = start === null || end === null || end === undefined || wall <= 0
      ? null
      : Math.round(((end - start) / wall) * 100) / 100;
  }
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
}

/** Describes this machine and Deno. */
export function machineInfo(): MachineInfo {
  let cpuModel: string | null = null;
  let memoryMb: number | null = null;
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? null;
    const total = /^MemTotal:\s+(\d+) kB$/m.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1];
    memoryMb = total === undefined ? null : Math.round(Number(total) / 1024);
  } catch {
    // Not Linux, or /proc hidden: the figures stand without these.
  }
  return {
    nproc: navigator.hardwareConcurrency,
    cpu_model: cpuModel,
    memory_total_mb: memoryMb,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    timestamp: new Date().toISOString(),
  };
}
