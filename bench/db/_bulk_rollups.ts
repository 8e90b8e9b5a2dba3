/**
 * Synthetic history is written straight into rollup_hourly and rollup_daily, millions of rows at once: their
 * row triggers, which keep site_daily (sql/0005) and the prefix sums (sql/0006), would then run once per row.
 * The benchmarks switch them off while loading and fill those tables afterwards with one statement each, which
 * gives the same rows.
 *
 * @module
 */
import type postgres from "postgres";

/** Runs `load` (inserts into the rollup tables) without their triggers, then fills the tables they keep. */
export async function loadRollups(sql: postgres.Sql, load: () => Promise<unknown>): Promise<void> {
  await sql`alter table rollup_hourly disable trigger user`;
  await sql`alter table rollup_daily disable trigger user`;
  try {
    await load();
  } finally {
    await sql`alter table rollup_hourly enable trigger user`;
    await sql`alter table rollup_daily enable trigger user`;
  }
  // In day order, as a running sink writes it (a day's rows are made during that day): the 90-day bars find
  // their days through site_daily's BRIN index, which a table in hash order defeats (bars 400 ms instead of 240).
  await sql`truncate site_daily`;
  await sql`
    insert into site_daily (bucket, site_id, checks, up_checks)
    select bucket, site_id, sum(checks), sum(up_checks) from rollup_daily group by 1, 2 order by 1, 2`;
  await sql`select rebuild_month_totals(), rebuild_day_to_hour()`;
}
