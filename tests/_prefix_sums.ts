/**
 * What the prefix sums of sql/0006 must hold, recomputed from the rollups by queries of their own: for every
 * (site, location) and UTC month, the month's sums with its first and last day with checks, and for every day
 * from the first to the last, the sums of the month's days up to it (rollup_monthly, rollup_month_to_date); for
 * every (site, location) and UTC day from rollup_day_to_hour_from on (sql/0008), the sums of the day's hours up
 * to each hour from its first to its last hour with checks (rollup_day_to_hour). Used by db_rollups_test.ts (after the writer's random history and partition
 * changes) and db_uptime_queries_test.ts (rows written straight into the rollups, inserted and deleted).
 *
 * @module
 */
import type postgres from "postgres";
import { assertEquals } from "./_assert.ts";

/** Asserts rollup_monthly, rollup_month_to_date and rollup_day_to_hour equal their recomputation from the
 * rollups (and that there are daily rollups). */
export async function assertPrefixSumsFollow(sql: postgres.Sql): Promise<void> {
  const lines = (rows: readonly { line: string }[]) => rows.map((r) => r.line);
  const [expectedMonths, expectedDays, storedMonths, storedDays] = await Promise.all([
    sql<{ line: string }[]>`
      select concat_ws(' ', to_char(date_trunc('month', bucket, 'UTC') at time zone 'UTC', 'YYYY-MM'), site_id,
                       location_id, sum(checks), sum(up_checks), counts_pairs(counts_sum(latency)),
                       to_char(min(bucket) at time zone 'UTC', 'DD'),
                       to_char(max(bucket) at time zone 'UTC', 'DD')) as line
      from rollup_daily group by date_trunc('month', bucket, 'UTC'), site_id, location_id order by 1`,
    sql<{ line: string }[]>`
      with m as (
        select site_id, location_id, date_trunc('month', bucket, 'UTC') as month, min(bucket) as first_day,
               max(bucket) as last_day
        from rollup_daily group by 1, 2, 3
      )
      select concat_ws(' ', to_char(g.day at time zone 'UTC', 'YYYY-MM-DD'), m.site_id, m.location_id,
                       sum(r.checks), sum(r.up_checks), counts_pairs(counts_sum(r.latency))) as line
      from m
      cross join lateral generate_series(m.first_day, m.last_day, interval '24 hours') g(day)
      join rollup_daily r on r.site_id = m.site_id and r.location_id = m.location_id
                         and r.bucket >= m.month and r.bucket <= g.day
      group by g.day, m.site_id, m.location_id order by 1`,
    sql<{ line: string }[]>`
      select concat_ws(' ', to_char(bucket at time zone 'UTC', 'YYYY-MM'), site_id, location_id, checks, up_checks,
                       counts_pairs(latency), to_char(first_day at time zone 'UTC', 'DD'),
                       to_char(last_day at time zone 'UTC', 'DD')) as line
      from rollup_monthly order by 1`,
    sql<{ line: string }[]>`
      select concat_ws(' ', to_char(bucket at time zone 'UTC', 'YYYY-MM-DD'), site_id, location_id, checks,
                       up_checks, counts_pairs(latency)) as line
      from rollup_month_to_date order by 1`,
  ]);
  assertEquals(lines(storedMonths), lines(expectedMonths), "rollup_monthly");
  assertEquals(lines(storedDays), lines(expectedDays), "rollup_month_to_date");
  assertEquals(expectedMonths.length > 0, true, "no daily rollups");
  const [expectedHours, storedHours] = await Promise.all([
    sql<{ line: string }[]>`
      with d as (
        select site_id, location_id, date_bin('1 day', bucket, timestamptz '2000-01-03 00:00:00+00') as day,
               min(bucket) as first_hour, max(bucket) as last_hour
        from rollup_hourly
        where bucket >= (select since from rollup_day_to_hour_from)
        group by 1, 2, 3
      )
      select concat_ws(' ', to_char(g.hour at time zone 'UTC', 'YYYY-MM-DD HH24'), d.site_id, d.location_id,
                       coalesce(sum(r.checks), 0), coalesce(sum(r.up_checks), 0),
                       counts_pairs(counts_sum(r.latency))) as line
      from d
      cross join lateral generate_series(d.first_hour, d.last_hour, interval '1 hour') g(hour)
      left join rollup_hourly r on r.site_id = d.site_id and r.location_id = d.location_id
                               and r.bucket >= d.day and r.bucket <= g.hour
      group by g.hour, d.site_id, d.location_id order by 1`,
    sql<{ line: string }[]>`
      select concat_ws(' ', to_char(bucket at time zone 'UTC', 'YYYY-MM-DD HH24'), site_id, location_id, checks,
                       up_checks, counts_pairs(latency)) as line
      from rollup_day_to_hour order by 1`,
  ]);
  assertEquals(lines(storedHours), lines(expectedHours), "rollup_day_to_hour");
}
