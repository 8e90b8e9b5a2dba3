/**
 * Synthetic history is written straight into rollup_daily, millions of rows at once: its row trigger, which
 * keeps site_daily (sql/0005), would then run once per row. The benchmarks switch it off while loading and fill
 * site_daily with one statement afterwards, which gives the same rows.
 *
 * @module
 */
import type postgres from "postgres";

/** Runs `load` (inserts into rollup_daily) without the site_daily trigger, then fills site_daily from scratch. */
export async function loadDailyRollups(sql: postgres.Sql, load: () => Promise<unknown>): Promise<void> {
  await sql`alter table rollup_daily disable trigger site_daily_follow`;
  try {
    await load();
  } finally {
    await sql`alter table rollup_daily enable trigger site_daily_follow`;
  }
  await sql`delete from site_daily`;
  await sql`
    insert into site_daily (bucket, site_id, checks, up_checks)
    select bucket, site_id, sum(checks), sum(up_checks) from rollup_daily group by 1, 2`;
}
