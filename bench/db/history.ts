/**
 * The history the database keeps, at the size of a year: 2,000 sites probed from 2 locations, synthesized
 * straight into the tables with `generate_series` (the writer is measured by bench/sink/db_insert.ts):
 *
 * - daily rollups for 365 days (every site and location, a one-minute interval: 1,440 checks a day);
 * - hourly rollups for the last 32 days (the timed queries read the hours of a partial day up to 30 days back;
 *   older months are partitions the planner prunes, so they only add disk, projected from the row size);
 * - raw checks for the last 2 days at a tenth of a one-minute interval (one check per 10 minutes per site and
 *   location), enough for the partial hours at the ends of a range;
 * - location state with the current hour's counts, site state, and an open incident for 1 % of the sites.
 *
 * Then, warm (each query run 5 times on one connection; the median wall time and the server process's CPU are
 * reported), each before (0003's site_uptime(), created as bench_site_uptime_0003) and after (0004): the monthly
 * SLA report with and without p95, the 90-day daily bars of every site (and site_daily_bars(), what a status
 * page runs), one site's last year by day, one site's last 24 hours by hour; every site's state now;
 * bytes on disk per raw check, per hourly and per daily row; and the disk 10,000 sites at a 30 s interval need
 * for a year with the default retention (raw 30 days, hourly 400 days, daily forever). Figures go to
 * bench/results/history.json.
 *
 * Run: `deno run -A bench/db/history.ts` (PostgreSQL as for the tests). Takes a few minutes.
 *
 * @module
 */
import { loadRollups } from "./_bulk_rollups.ts";
import { createTestDatabase } from "../../dev/services.ts";
import { migrate } from "../../src/db/migrate.ts";
import { maintainPartitions } from "../../src/db/partitions.ts";
import { maintainRollupPartitions } from "../../src/db/rollup_partitions.ts";
import { silentLogger as log } from "../../src/log.ts";
import { serverTime, timed } from "./_timing.ts";

const SITES = 2000;
const LOCATIONS = 2;
const DAYS = 365;
const HOURLY_DAYS = 32;
const RAW_DAYS = 2;
const RAW_EVERY_MINUTES = 10;
const RAW_RETENTION_DAYS = 30;
const RUNS = 5;
const DAY_MS = 86_400_000;

const results = new URL("../results/history.json", import.meta.url);
const db = await createTestDatabase("monitor_bench_history");
const { sql } = db;

/** The 0003 definition of site_uptime(), as `bench_site_uptime_0003`: the "before" of each timed query. */
async function createOldSiteUptime(): Promise<void> {
  const text = await Deno.readTextFile(new URL("../../sql/0003_history.sql", import.meta.url));
  const match = /create function site_uptime\([\s\S]*?\n\$\$;\n/.exec(text);
  if (match === null) throw new Error("Cannot find site_uptime() in sql/0003_history.sql");
  await sql.unsafe(
    match[0].replace("create function site_uptime(", "create function bench_site_uptime_0003("),
  );
}

try {
  await migrate(sql, log);
  const now = new Date();
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  for (let month = 13; month >= 0; month--) {
    await maintainRollupPartitions(sql, { now: new Date(today - month * 30 * DAY_MS), log });
  }
  // Raw partitions as a sink with the default retention has them (30 days back, 7 ahead), so that plans cover
  // as many partitions as they would; only the last RAW_DAYS hold checks.
  for (let day = RAW_RETENTION_DAYS; day >= 0; day -= 7) {
    await maintainPartitions(sql, {
      now: new Date(today - day * DAY_MS),
      aheadDays: 7,
      retentionDays: 0,
      log,
    });
  }
  console.log(`synthesizing ${SITES} sites x ${LOCATIONS} locations: ${DAYS} days of daily rollups, ...`);
  let start = performance.now();
  await sql`
    insert into sites (name, url, first_seen, last_seen)
    select 'site-' || s, 'https://site-' || s || '.example/', now() - interval '1 year', now()
    from generate_series(1, ${SITES}) s`;
  await sql`insert into agents (name, region) select 'agent-' || l, 'loc-' || l from generate_series(1, ${LOCATIONS}) l`;
  await sql`insert into locations (name) select 'loc-' || l from generate_series(1, ${LOCATIONS}) l`;
  // A latency histogram over 12 buckets around 50-120 ms (the bucket depends on the site), and 1 in 10 days with
  // a few failed checks.
  const generate = (
    table: "rollup_daily" | "rollup_hourly",
    step: string,
    from: number,
    count: number,
    perRow: number,
  ) =>
    sql`
      insert into ${sql(table)} (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
      select t, s, l, ${perRow}, ${perRow} - x.down,
             case when x.down > 0 then array_fill(x.down, array[1], array[4]) end,
             ('[' || x.lo || ':' || x.lo + 11 || ']=' || array[
               (${perRow} - x.down) * 1 / 100, (${perRow} - x.down) * 3 / 100, (${perRow} - x.down) * 8 / 100,
               (${perRow} - x.down) * 15 / 100, (${perRow} - x.down) * 22 / 100, (${perRow} - x.down) * 20 / 100,
               (${perRow} - x.down) * 14 / 100, (${perRow} - x.down) * 9 / 100, (${perRow} - x.down) * 5 / 100,
               (${perRow} - x.down) * 2 / 100, 1, 1]::text)::int[]
      from generate_series(${new Date(from)}::timestamptz, ${new Date(
      from,
    )}::timestamptz + ${step}::interval * (${count} - 1),
                           ${step}::interval) t
      cross join generate_series(1, ${SITES}) s
      cross join generate_series(1, ${LOCATIONS}) l
      cross join lateral (
        select case when random() < 0.1 then 1 + (random() * ${
      Math.max(1, perRow / 50)
    })::int else 0 end as down,
               51 + s % 12 as lo
      ) x`;
  // Through the hour before the current one (the current hour is counted in location_state).
  const hoursToday = Math.floor((now.getTime() - today) / 3_600_000);
  await loadRollups(sql, async () => {
    await generate(
      "rollup_hourly",
      "1 hour",
      today - HOURLY_DAYS * DAY_MS,
      HOURLY_DAYS * 24 + hoursToday,
      60,
    );
    console.log(`  hourly rollups: ${((performance.now() - start) / 1000).toFixed(0)} s`);
    start = performance.now();
    // The days the hourly rollups cover hold their sums, as the writer keeps them (today so far included).
    await generate("rollup_daily", "1 day", today - (DAYS - 1) * DAY_MS, DAYS - HOURLY_DAYS - 1, 1440);
    await sql`
      insert into rollup_daily (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
      select date_bin('1 day', bucket, timestamptz '2000-01-03 00:00:00+00'), site_id, location_id, sum(checks),
             sum(up_checks), counts_sum(error_counts), counts_sum(latency)
      from rollup_hourly group by 1, 2, 3`;
  });
  console.log(`  daily rollups and prefix sums: ${((performance.now() - start) / 1000).toFixed(0)} s`);
  start = performance.now();
  await sql`
    insert into checks (id, site_id, agent_id, scheduled_at, started_at, up, status, ttfb_ms, duration_ms, bytes,
                        error_kind, error_message)
    select gen_random_uuid(), s, l, t, t + interval '3 ms', not x.down, case when x.down then 503 else 200 end,
           20, case when x.down then 12 else 40 + random() * 200 end, 5120,
           case when x.down then 'http'::check_error_kind end,
           case when x.down then 'Status 503 is not in 200-399' end
    from generate_series(${new Date(today - (RAW_DAYS - 1) * DAY_MS)}::timestamptz, now(),
                         interval '${sql.unsafe(String(RAW_EVERY_MINUTES))} minutes') t
    cross join generate_series(1, ${SITES}) s
    cross join generate_series(1, ${LOCATIONS}) l
    cross join lateral (select random() < 0.01 as down) x`;
  console.log(`  raw checks: ${((performance.now() - start) / 1000).toFixed(0)} s`);
  await sql`
    insert into location_state (site_id, location_id, check_id, checked_at, seen_at, since, agent_id,
                                consecutive_failures, interval_ms, duration_ms, status, up, acc_hour, acc_checks,
                                acc_up_checks, acc_latency)
    select s, l, gen_random_uuid(), now() - interval '20 seconds', now() - interval '19 seconds',
           now() - interval '3 days', l, 0, 60000, 80, 200, true, date_trunc('hour', now()), 20, 20,
           '[55:57]={5,10,5}'
    from generate_series(1, ${SITES}) s cross join generate_series(1, ${LOCATIONS}) l`;
  // As the writer keeps them: the current hour's counts are those of the hour's raw checks, and the latest
  // check is the last raw one.
  await sql`
    update location_state x
    set acc_checks = coalesce(r.checks, 0), acc_up_checks = coalesce(r.up_checks, 0), acc_latency = r.latency,
        checked_at = c.last, seen_at = c.last
    from (select site_id, agent_id, max(started_at) as last from checks group by 1, 2) c
    left join rollups_from_checks(date_trunc('hour', now()), date_trunc('hour', now()) + interval '1 hour',
                                  '1 hour') r on r.site_id = c.site_id and r.location_id = c.agent_id
    where x.site_id = c.site_id and x.location_id = c.agent_id`;
  await sql`
    update location_state set up = false, status = 503, consecutive_failures = 7, error_kind = 'http',
                              error_message = 'Status 503 is not in 200-399', since = now() - interval '7 minutes'
    where site_id % 100 = 0 and location_id = 1`;
  await sql`
    insert into site_state (site_id, state, since, changed_at)
    select s, case when s % 100 = 0 then 'degraded' else 'up' end,
           case when s % 100 = 0 then now() - interval '7 minutes' else now() - interval '3 days' end, now()
    from generate_series(1, ${SITES}) s`;
  await sql`
    insert into site_incidents (site_id, started_at, worst_state, location_ids, first_error_kind, first_error_message)
    select s, now() - interval '7 minutes', 'degraded', '{1}', 'http', 'Status 503 is not in 200-399'
    from generate_series(100, ${SITES}, 100) s`;
  await sql`vacuum analyze`;
  await createOldSiteUptime();

  // Each query of the issue, before (0003's site_uptime, as bench_site_uptime_0003) and after, back to back on
  // one connection.
  const connection = await sql.reserve();
  const run = (name: string, query: Parameters<typeof timed>[3]) => timed(connection, name, RUNS, query);
  const last30 = (fn: string, columns: string) =>
    `select ${columns} from ${fn}(null, now() - interval '30 days', now(), null)`;
  const bars = (fn: string) =>
    `select site, bucket, uptime_percent from ${fn}(null, date_trunc('day', now(), 'UTC') - interval '89 days',
       date_trunc('day', now(), 'UTC') + interval '1 day', '1 day')`;
  const year = (fn: string) => `select * from ${fn}('site-42', now() - interval '365 days', now(), '1 day')`;
  const day = (fn: string) =>
    `select * from ${fn}('site-42', date_trunc('hour', now()) - interval '23 hours',
       date_trunc('hour', now()) + interval '1 hour', '1 hour')`;
  const OLD = "bench_site_uptime_0003";
  const NEW = "site_uptime";
  // The same answers first: the timings below compare two ways of computing one thing.
  const yearColumns = (fn: string, columns: string) => year(fn).replace("*", `bucket, ${columns}`);
  for (const query of [last30, yearColumns]) {
    const text = (fn: string) => query(fn, "site, checks, up_checks, uptime_percent, p50_ms, p95_ms, p99_ms");
    // One transaction: both read the same now().
    const [before, after] = await sql.begin((tx) => [tx.unsafe(text(OLD)), tx.unsafe(text(NEW))]);
    if (JSON.stringify(before) !== JSON.stringify(after) || before.length === 0) {
      throw new Error(`before and after answer differently: ${text(NEW)}`);
    }
  }
  console.log("\nbefore and after give the same rows (monthly report, one site's year)");
  console.log(`queries, warm (median of ${RUNS}), before (0003) and after (now):`);
  const queries = [];
  for (const [label, fn] of [["before", OLD], ["after", NEW]] as const) {
    queries.push(
      await run(
        `monthly SLA report, counts: every site, last 30 days (${label})`,
        (c) => c.unsafe(last30(fn, "site, checks, up_checks, uptime_percent")),
      ),
    );
  }
  for (const [label, fn] of [["before", OLD], ["after", NEW]] as const) {
    queries.push(
      await run(
        `monthly SLA report with p95: every site, last 30 days (${label})`,
        (c) => c.unsafe(last30(fn, "site, uptime_percent, p95_ms")),
      ),
    );
  }
  // The same report as 0004 planned it (daily and hourly rollups, no prefix sums), on this machine in this run:
  // uptime_reads_totals() is replaced inside a transaction that is rolled back.
  await connection.unsafe("begin");
  try {
    await connection.unsafe(`
      create or replace function uptime_reads_totals(from_time timestamptz, to_time timestamptz, width interval)
      returns boolean language sql immutable parallel safe as $$ select false $$`);
    queries.push(
      await run(
        "monthly SLA report with p95: every site, last 30 days (0004's plan: no prefix sums)",
        (c) => c.unsafe(last30(NEW, "site, uptime_percent, p95_ms")),
      ),
    );
  } finally {
    await connection.unsafe("rollback");
  }
  for (const [label, fn] of [["before", OLD], ["after", NEW]] as const) {
    queries.push(
      await run(`90-day daily bars, every site, one row a day (${label})`, (c) => c.unsafe(bars(fn))),
    );
  }
  queries.push(
    await run(
      "90-day daily bars, every site, one row a site: site_daily_bars(90)",
      (c) => c`select site, first_day, uptime_percent from site_daily_bars(90)`,
    ),
  );
  for (const [label, fn] of [["before", OLD], ["after", NEW]] as const) {
    queries.push(await run(`one site's last year by day, p50/p95/p99 (${label})`, (c) => c.unsafe(year(fn))));
  }
  for (const [label, fn] of [["before", OLD], ["after", NEW]] as const) {
    queries.push(await run(`one site's last 24 h by hour, p50/p95/p99 (${label})`, (c) => c.unsafe(day(fn))));
  }
  // As a program calls it: bound parameters (postgres.js prepares the statement).
  for (const [label, fn] of [["before", OLD], ["after", NEW]] as const) {
    queries.push(
      await run(
        `one site's last 30 days by day, bound parameters (${label})`,
        (c) =>
          c`select * from ${c(fn)}(${"site-42"}, ${new Date(Date.now() - 30 * DAY_MS)}, ${new Date()},
                                   ${"1 day"}::interval)`,
      ),
    );
  }
  queries.push(await run("every site's state now (site_status)", (c) => c`select * from site_status`));
  queries.push(
    await run(
      "outages of the last 30 days, longest first (incidents)",
      (c) =>
        c`select * from incidents where coalesce(ended_at, now()) >= now() - interval '30 days'
          order by duration desc`,
    ),
  );

  // Server time alone (EXPLAIN ANALYZE): the rest of a query's time is the client reading the rows.
  const serverTimes: Record<string, { execution_ms: number; planning_ms: number }> = {};
  for (const [label, fn] of [["before", OLD], ["after", NEW]] as const) {
    serverTimes[`sla_counts_${label}`] = await serverTime(
      connection,
      last30(fn, "site, checks, up_checks, uptime_percent"),
    );
    serverTimes[`sla_p95_${label}`] = await serverTime(
      connection,
      last30(fn, "site, uptime_percent, p95_ms"),
    );
    serverTimes[`bars_${label}`] = await serverTime(connection, bars(fn));
    serverTimes[`year_${label}`] = await serverTime(connection, year(fn));
  }
  serverTimes.bars_site_daily_bars = await serverTime(connection, "select * from site_daily_bars(90)");
  console.log("  server time alone (EXPLAIN ANALYZE; 0004's planning is inside its functions' execution):");
  for (const [name, time] of Object.entries(serverTimes)) {
    console.log(`    ${name.padEnd(28)} execution ${time.execution_ms} ms, planning ${time.planning_ms} ms`);
  }

  // What the other way of keeping rollups would cost: rolling up a closed hour from its raw checks (a GROUP BY
  // over the hour's rows, as rollups_from_checks() does), per raw check.
  const [hourRows] = await sql<{ n: number }[]>`
    select count(*)::int as n from checks
    where started_at >= date_trunc('hour', now()) - interval '2 hours' and started_at < date_trunc('hour', now()) - interval '1 hour'`;
  const closedHour = await run(
    `roll up one closed hour from raw (${hourRows!.n} checks)`,
    (c) =>
      c`select * from rollups_from_checks(date_trunc('hour', now()) - interval '2 hours',
                                          date_trunc('hour', now()) - interval '1 hour', '1 hour')`,
  );
  const closedHourMicrosPerCheck = Math.round(closedHour.median_ms * 1000 / hourRows!.n * 10) / 10;
  console.log(`  = ${closedHourMicrosPerCheck} µs per raw check`);
  connection.release();

  const size = async (table: string) => {
    const [row] = await sql<{ bytes: string; rows: string }[]>`
      select coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 as bytes,
             (select count(*) from ${sql(table)})::int8 as rows
      from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = ${table}::regclass`;
    return {
      bytes: Number(row!.bytes),
      rows: Number(row!.rows),
      per_row: Number(row!.bytes) / Number(row!.rows),
    };
  };
  const raw = await size("checks");
  const hourly = await size("rollup_hourly");
  const daily = await size("rollup_daily");
  // The prefix sums (sql/0006) add a row per (site, location)-day and one per month to the daily tier, and one
  // per (site, location)-hour to the hourly tier.
  const monthToDate = await size("rollup_month_to_date");
  const monthly = await size("rollup_monthly");
  const dayToHour = await size("rollup_day_to_hour");
  const dailyTier = daily.per_row + monthToDate.bytes / daily.rows + monthly.bytes / daily.rows;
  const hourlyTier = hourly.per_row + dayToHour.bytes / hourly.rows;
  const gb = (bytes: number) => Math.round(bytes / 1e8) / 10;
  // 10,000 sites (one location each), every 30 s, a year, default retention: raw 30 days, hourly 365 of its 400
  // days, daily 365 days.
  const projection = {
    sites: 10_000,
    interval_s: 30,
    raw_gb: gb(10_000 * 2880 * 30 * raw.per_row),
    hourly_gb: gb(10_000 * 24 * 365 * hourlyTier),
    daily_gb: gb(10_000 * 365 * dailyTier),
  };
  const perThousandSites = {
    raw_gb_30_days_at_30s: gb(1000 * 2880 * 30 * raw.per_row),
    hourly_gb_400_days: gb(1000 * 24 * 400 * hourlyTier),
    daily_gb_per_year: gb(1000 * 365 * dailyTier),
  };
  console.log(`\nbytes on disk (table + indexes, after VACUUM):`);
  console.log(`  raw check        ${raw.per_row.toFixed(1)} bytes (${raw.rows} rows)`);
  console.log(
    `  hourly row       ${hourly.per_row.toFixed(1)} bytes per (site, location)-hour (${hourly.rows} rows)`,
  );
  console.log(
    `  daily row        ${daily.per_row.toFixed(1)} bytes per (site, location)-day (${daily.rows} rows)`,
  );
  console.log(
    `  month totals     ${monthToDate.per_row.toFixed(1)} bytes per prefix row (${monthToDate.rows} rows), ` +
      `${monthly.per_row.toFixed(1)} per monthly row (${monthly.rows}): daily tier ${dailyTier.toFixed(1)} ` +
      `bytes per (site, location)-day in all`,
  );
  console.log(
    `  day-to-hour sums ${
      dayToHour.per_row.toFixed(1)
    } bytes per row (${dayToHour.rows} rows): hourly tier ` +
      `${hourlyTier.toFixed(1)} bytes per (site, location)-hour in all`,
  );
  console.log(
    `projected, 10,000 sites at 30 s for a year, default retention: raw ${projection.raw_gb} GB + hourly ` +
      `${projection.hourly_gb} GB + daily ${projection.daily_gb} GB (per location)`,
  );
  console.log(`per 1,000 sites (one location, 30 s): ${JSON.stringify(perThousandSites)}`);
  const [server] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
  await Deno.writeTextFile(
    results,
    JSON.stringify(
      {
        at: now.toISOString(),
        machine: {
          cores: navigator.hardwareConcurrency,
          postgres: server?.version,
          deno: Deno.version.deno,
          load_average: Deno.loadavg(),
        },
        data: {
          sites: SITES,
          locations: LOCATIONS,
          daily_days: DAYS,
          hourly_days: HOURLY_DAYS,
          raw_days: RAW_DAYS,
          raw_every_minutes: RAW_EVERY_MINUTES,
        },
        queries,
        server_time: serverTimes,
        closed_hour_rollup: {
          ...closedHour,
          raw_checks: hourRows!.n,
          micros_per_check: closedHourMicrosPerCheck,
        },
        bytes: {
          raw_check: raw.per_row,
          hourly_row: hourly.per_row,
          daily_row: daily.per_row,
          month_to_date_row: monthToDate.per_row,
          monthly_row: monthly.per_row,
          daily_tier_per_day: dailyTier,
          day_to_hour_row: dayToHour.per_row,
          hourly_tier_per_hour: hourlyTier,
        },
        projection_10k_sites_30s_one_year: projection,
        per_1000_sites: perThousandSites,
      },
      null,
      2,
    ) + "\n",
  );
} finally {
  // BENCH_KEEP_DB=1 keeps the database, to look at plans afterwards.
  if (Deno.env.get("BENCH_KEEP_DB") === "1") {
    console.log(`kept database ${db.name}`);
    await sql.end();
  } else {
    await db.drop();
  }
}
