/**
 * "What time is it for the database?": the clock staleness is judged by, and the cheapest query that proves
 * the database answers (`/healthz`).
 *
 * @module
 */
import type postgres from "postgres";

/**
 * Reads the database's clock.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const now = await readNow(sql);
 * ```
 */
export async function readNow(sql: postgres.Sql): Promise<Date> {
  const [row] = await sql<{ now: Date }[]>`select now() as now`;
  return row!.now;
}
