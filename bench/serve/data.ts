/**
 * Synthetic history for the read side's benchmark, written straight into the history tables (as the history
 * issue allows for its own benchmark): `sites` sites in two locations, daily rollups for a year, hourly rollups
 * for the last two days, raw checks (one a minute per location) for the last hour, fresh location state with
 * the current hour's counts,
 * and an incident history (about 2 % of sites with an open incident, 20 % with one ended a month ago).
 * Rollup and check partitions are made as the sink makes them, so queries prune as they would in production.
 *
 * @module
 */
import type postgres from "postgres";
import { migrate } from "../../src/db/migrate.ts";
import { maintainPartitions } from "../../src/db/partitions.ts";
import { maintainRollupPartitions } from "../../src/db/rollup_partitions.ts";
import { silentLogger } from "../../src/log.ts";
import { loadRollups } from "../db/_bulk_rollups.ts";

/** How long each step of {@linkcode generateHistory} took, in ms, and the rows it wrote. */
export interface GenerationReport {
  readonly sites: number;
  readonly daily_rows: number;
  readonly hourly_rows: number;
  readonly raw_checks: number;
  readonly seconds: number;
}

// A histogram of an up site: most checks near 120 ms, a tail to ~400 ms (buckets 62..77 of latency_thresholds).
const LATENCY_DAY = "[62:77]={20,60,150,300,420,480,420,300,200,140,100,80,60,40,30,20}";
const LATENCY_HOUR = "[62:77]={1,3,6,12,17,20,17,12,8,6,4,3,2,2,1,1}";

/**
 * Migrates `sql`'s (empty) database and fills it. Returns the row counts and the time it took.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * await generateHistory(sql, 1_000);
 * ```
 */
export async function generateHistory(sql: postgres.Sql, sites: number): Promise<GenerationReport> {
  const started = performance.now();
  await migrate(sql, silentLogger);
  await maintainPartitions(sql, { retentionDays: 30, log: silentLogger });
  // Rollup partitions as the sink makes them, for the 13 months back (as bench/db/history.ts does).
  const today0 = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  for (let month = 13; month >= 0; month--) {
    await maintainRollupPartitions(sql, {
      now: new Date(today0 - month * 30 * 86_400_000),
      log: silentLogger,
    });
  }
  await sql`
    insert into sites (name, url, first_seen, last_seen)
    select 'site-' || lpad(i::text, 5, '0'), 'https://site-' || i || '.example.com/health',
           now() - interval '1 year', now()
    from generate_series(1, ${sites}) i`;
  await sql`insert into agents (name, region) values ('agent-eu', 'eu-west'), ('agent-us', 'us-east')`;
  await sql`insert into locations (name) values ('eu-west'), ('us-east') on conflict do nothing`;
  const today = sql`date_bin('1 day', now(), timestamptz '2000-01-03 00:00:00+00')`;
  let [dailyRows, hourlyRows, rawRows] = [0, 0, 0];
  // One load for every rollup insert (the year, the hours, then today from the hours before the current one), so
  // the tables the rollups' triggers keep are filled once.
  await loadRollups(sql, async () => {
    const daily = await sql`
      insert into rollup_daily (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
      select d, s.id, l.id, 2880, 2880 - f, case when f > 0 then array[0, f, 0, 0, 0, 0, 0, 0] end,
             ${LATENCY_DAY}::int[]
      from sites s cross join locations l
      cross join generate_series(${today} - interval '365 days', ${today} - interval '1 day', interval '1 day') d
      cross join lateral (select case when hashint4(s.id * 1000 + extract(doy from d)::int) % 40 = 0
                                      then 30 + abs(hashint4(s.id)) % 200 else 0 end as f) x`;
    dailyRows = daily.count;
    const hourly = await sql`
      insert into rollup_hourly (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
      select h, s.id, l.id, 120, 120, null, ${LATENCY_HOUR}::int[]
      from sites s cross join locations l
      cross join generate_series(${today} - interval '2 days', date_trunc('hour', now()) - interval '1 hour', interval '1 hour') h`;
    hourlyRows = hourly.count;
    const raw = await sql`
      insert into checks (started_at, scheduled_at, site_id, bytes, ttfb_ms, duration_ms, agent_id, status, up, id)
      select t, t, s.id, 1200, 60, 100 + abs(hashint4(s.id + extract(minute from t)::int)) % 200, a.id, 200, true,
             gen_random_uuid()
      from sites s cross join agents a
      cross join generate_series(now() - interval '60 minutes', now() - interval '30 seconds', interval '1 minute') t`;
    rawRows = raw.count;
    // Today's daily rollups hold the hours before the current one; the current hour's counts are in
    // location_state (acc_*), as the writer keeps them.
    await sql`
      insert into rollup_daily (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
      select ${today}, site_id, location_id, sum(checks), sum(up_checks), null, ${LATENCY_DAY}::int[]
      from rollup_hourly where bucket >= ${today} and bucket < date_trunc('hour', now())
      group by site_id, location_id`;
  });
  await sql`
    insert into location_state (site_id, location_id, check_id, checked_at, seen_at, since, agent_id,
                                consecutive_failures, interval_ms, duration_ms, status, up, error_kind, error_message,
                                acc_hour, acc_checks, acc_up_checks, acc_latency)
    select s.id, l.id, gen_random_uuid(), now() - interval '20 seconds', now() - interval '20 seconds',
           now() - interval '3 days', a.id, case when s.id % 50 = 0 and l.name = 'us-east' then 4 else 0 end, 60000,
           130, case when s.id % 50 = 0 and l.name = 'us-east' then 503 else 200 end,
           not (s.id % 50 = 0 and l.name = 'us-east'),
           case when s.id % 50 = 0 and l.name = 'us-east' then 'http'::check_error_kind end,
           case when s.id % 50 = 0 and l.name = 'us-east' then 'Status 503 is not in 200-399' end,
           date_trunc('hour', now()), extract(minute from now())::int * 2, extract(minute from now())::int * 2,
           ${LATENCY_HOUR}::int[]
    from sites s cross join locations l join agents a on a.region = l.name`;
  await sql`
    insert into site_state (site_id, state, since, changed_at)
    select id, case when id % 50 = 0 then 'degraded' else 'up' end,
           now() - case when id % 50 = 0 then interval '4 minutes' else interval '3 days' end, now()
    from sites`;
  await sql`
    insert into site_incidents (site_id, started_at, ended_at, worst_state, location_ids, first_error_kind,
                                first_error_message)
    select s.id, now() - interval '4 minutes', null, 'degraded', array[l.id], 'http'::check_error_kind, 'Status 503 is not in 200-399'
    from sites s join locations l on l.name = 'us-east' where s.id % 50 = 0
    union all
    select s.id, now() - interval '30 days', now() - interval '30 days' + interval '25 minutes', 'down',
           array(select id from locations order by id), 'timeout'::check_error_kind, 'No response within 5s'
    from sites s where s.id % 5 = 0`;
  await sql`analyze`;
  return {
    sites,
    daily_rows: dailyRows,
    hourly_rows: hourlyRows,
    raw_checks: rawRows,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
}
