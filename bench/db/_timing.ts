/**
 * Timing of read queries for bench/db/history.ts: warm wall time on one reserved connection, the CPU its
 * server process spent (from /proc, so PostgreSQL must run on this machine), and server time alone from
 * EXPLAIN ANALYZE (execution and planning). CPU time is steadier than wall time when other work loads the
 * machine. It is measured in separate runs without parallel workers (whose CPU /proc of the connection's
 * process does not show), so it is all the work a query takes.
 *
 * @module
 */
import type postgres from "postgres";

/** One timed query. */
export interface QueryFigure {
  readonly name: string;
  readonly rows: number;
  readonly median_ms: number;
  readonly min_ms: number;
  /** CPU of the server process per run without parallel workers (median), in ms; null where /proc cannot be
   * read. */
  readonly server_cpu_ms: number | null;
}

const round1 = (value: number) => Math.round(value * 10) / 10;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The CPU time (user + system, ms) process `pid` has used, or null when it cannot be read. */
function processCpuMs(pid: number): number | null {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
    // utime and stime, in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * Runs `query` once to warm the cache, then `runs` times on `connection` for the wall time, then `runs` times
 * without parallel workers for the CPU time, and prints and returns the medians.
 */
export async function timed(
  connection: postgres.ReservedSql,
  name: string,
  runs: number,
  query: (sql: postgres.ReservedSql) => PromiseLike<{ readonly length: number }>,
): Promise<QueryFigure> {
  const [backend] = await connection<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const pid = backend!.pid;
  await query(connection);
  const times: number[] = [];
  let rows = 0;
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    rows = (await query(connection)).length;
    times.push(performance.now() - start);
  }
  const cpu: number[] = [];
  await connection`set max_parallel_workers_per_gather = 0`;
  try {
    for (let run = 0; run < runs; run++) {
      const cpuBefore = processCpuMs(pid);
      await query(connection);
      const cpuAfter = processCpuMs(pid);
      if (cpuBefore !== null && cpuAfter !== null) cpu.push(cpuAfter - cpuBefore);
    }
  } finally {
    await connection`reset max_parallel_workers_per_gather`;
  }
  const figure: QueryFigure = {
    name,
    rows,
    median_ms: round1(median(times)),
    min_ms: round1(Math.min(...times)),
    server_cpu_ms: cpu.length === runs ? round1(median(cpu)) : null,
  };
  console.log(
    `  ${name.padEnd(66)} ${String(figure.median_ms).padStart(8)} ms median, server CPU (serial) ${
      String(figure.server_cpu_ms).padStart(5)
    } ms  (${rows} rows)`,
  );
  return figure;
}

/** Server time of a statement by EXPLAIN ANALYZE (no per-node timing): execution and planning, in ms. */
export async function serverTime(
  connection: postgres.ReservedSql,
  text: string,
): Promise<{ execution_ms: number; planning_ms: number }> {
  const [row] = await connection.unsafe(`explain (analyze, timing off, summary, format json) ${text}`);
  const plan = (row!["QUERY PLAN"] as { "Execution Time": number; "Planning Time": number }[])[0]!;
  return { execution_ms: round1(plan["Execution Time"]), planning_ms: round1(plan["Planning Time"]) };
}
