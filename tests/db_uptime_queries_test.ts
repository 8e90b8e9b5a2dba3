/**
 * The query surface as 0004 computes it (sql/0004_fast_history.sql) against 0003's definitions over the same
 * rows: site_uptime() and location_uptime() give exactly what 0003's site_uptime() body gives (counts, uptime
 * text and percentiles) for every kind of range and width, and site_daily_bars() the same days in one row a
 * site. The data is written straight into the tables: daily and hourly rollups (histograms with NULL elements
 * and varying bounds), raw checks for the partial hours, and the current hour's counts in location_state.
 */
import type postgres from "postgres";
import { assertEquals, assertRejects } from "./_assert.ts";
import { assertPrefixSumsFollow } from "./_prefix_sums.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate } from "../src/db/migrate.ts";
import { maintainPartitions } from "../src/db/partitions.ts";
import { maintainRollupPartitions } from "../src/db/rollup_partitions.ts";
import { silentLogger as log } from "../src/log.ts";

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** 0003's site_uptime() body (or location_uptime()'s, `byLocation`), over 0003's uptime_rows(). */
function before(
  sql: postgres.Sql,
  site: string | null,
  from: Date,
  to: Date,
  width: string | null,
  byLocation = false,
) {
  const location = byLocation ? sql`r.location_id` : sql`null::int`;
  return sql`
    select s.name as site, l.name as location, u.site_id, u.bucket, u.checks, u.up_checks,
           round(100.0 * u.up_checks / u.checks, 3)::text as uptime_percent,
           latency_percentile(u.latency, 0.5) as p50_ms, latency_percentile(u.latency, 0.95) as p95_ms,
           latency_percentile(u.latency, 0.99) as p99_ms
    from (
      select r.site_id, ${location} as location_id, uptime_bucket(r.start, ${width}::interval, ${from}) as bucket,
             sum(r.checks)::bigint as checks, sum(r.up_checks)::bigint as up_checks, latency_merge(r.latency) as latency
      from uptime_rows(${site}, ${from}, ${to}, ${width}::interval) r
      group by 1, 2, 3
    ) u
    join sites s on s.id = u.site_id
    left join locations l on l.id = u.location_id
    order by s.name, l.name, u.bucket`;
}

function after(sql: postgres.Sql, site: string | null, from: Date, to: Date, width: string | null) {
  return sql`
    select site, null::text as location, site_id, bucket, checks, up_checks, uptime_percent::text as uptime_percent,
           p50_ms, p95_ms, p99_ms
    from site_uptime(${site}, ${from}, ${to}, ${width}::interval)`;
}

function afterByLocation(sql: postgres.Sql, site: string | null, from: Date, to: Date, width: string | null) {
  return sql`
    select site, location, site_id, bucket, checks, up_checks, uptime_percent::text as uptime_percent,
           p50_ms, p95_ms, p99_ms
    from location_uptime(${site}, ${from}, ${to}, ${width}::interval)`;
}

/** Sites q-1..q-5 from locations a and b; see the module notes. q-2 has no rollups 10 days ago, q-3 none
 * before 5 days ago, q-5 none at all. */
async function fill(sql: postgres.Sql, now: number): Promise<void> {
  const today = Math.floor(now / DAY) * DAY;
  for (let month = 2; month >= 0; month--) {
    await maintainRollupPartitions(sql, { now: new Date(today - month * 30 * DAY), log });
  }
  await maintainPartitions(sql, { now: new Date(today - DAY), aheadDays: 2, retentionDays: 0, log });
  await sql`
    insert into sites (name, url, first_seen, last_seen)
    select 'q-' || s, 'https://q-' || s || '.example/', now() - interval '60 days', now()
    from generate_series(1, 5) s`;
  await sql`insert into agents (name, region) values ('agent-a', 'a'), ('agent-b', 'b')`;
  await sql`insert into locations (name) values ('a'), ('b')`;
  // A histogram of 1 to 6 buckets from bucket 40 to 90, by a hash of its row; some elements NULL (as the
  // writer's in-place adds leave them).
  const rollups = (table: "rollup_daily" | "rollup_hourly", step: string, from: Date, to: Date) =>
    sql`
      insert into ${sql(table)} (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
      select t, s, l, x.checks, x.checks - x.down, case when x.down > 0 then array[0, x.down]::int[] end,
             ('[' || x.lo || ':' || x.lo + x.n - 1 || ']=' || array(
               select case when (x.h >> k) % 7 = 0 then null else 1 + abs(x.h >> k) % 50 end
               from generate_series(1, x.n) k)::text)::int[]
      from generate_series(${from}::timestamptz, ${to}::timestamptz, ${step}::interval) t
      cross join generate_series(1, 4) s
      cross join generate_series(1, 2) l
      cross join lateral (select hashint8(extract(epoch from t)::int8 * 10 + s * 2 + l) as h) hh
      cross join lateral (
        select hh.h, 200 + abs(hh.h) % 100 as checks, case when hh.h % 5 = 0 then 1 + abs(hh.h) % 20 else 0 end
               as down, 40 + abs(hh.h) % 50 as lo, 1 + abs(hh.h >> 8) % 6 as n
      ) x
      where not (s = 2 and t >= ${new Date(today - 10 * DAY)} and t < ${new Date(today - 9 * DAY)})
        and not (s = 3 and t < ${new Date(today - 5 * DAY)})
        and not (s = 4 and l = 2 and t >= ${new Date(today - 20 * DAY)})`;
  // The last two days' daily rows are made below from their hourly rows (today's only once it has one: in the
  // first hour of a day a writer has no daily row for it).
  await rollups("rollup_daily", "1 day", new Date(today - 40 * DAY), new Date(today - DAY));
  const hour = Math.floor(now / HOUR) * HOUR;
  await rollups("rollup_hourly", "1 hour", new Date(today - 2 * DAY), new Date(hour - HOUR));
  // A day's rollup_daily row holds its hourly rows' sums, as the writer keeps them (sql/0006 relies on it).
  await sql`delete from rollup_daily where bucket >= ${new Date(today - 2 * DAY)}`;
  await sql`
    insert into rollup_daily (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
    select date_bin('1 day', bucket, timestamptz '2000-01-03 00:00:00+00'), site_id, location_id, sum(checks),
           sum(up_checks), counts_sum(error_counts), counts_sum(latency)
    from rollup_hourly group by 1, 2, 3`;
  // Every 7 minutes, counted back from a moment of the current hour before now: every location has a check in
  // the current hour, as the writer's location_state counts of that hour always hold one (a count of 0 would
  // divide by zero in 0003's percentages, the reference here).
  await sql`
    insert into checks (id, site_id, agent_id, scheduled_at, started_at, up, status, ttfb_ms, duration_ms, bytes,
                        error_kind, error_message)
    select gen_random_uuid(), s, a, t, t, x.up, case when x.up then 200 else 503 end, 5,
           case when x.up then 20 + abs(x.h) % 400 else 9 end, 10,
           case when not x.up then 'http'::check_error_kind end, case when not x.up then 'Status 503' end
    from generate_series(${new Date(hour + Math.floor((now - hour) / 2))}::timestamptz,
                         ${new Date(today - DAY)}::timestamptz, interval '-7 minutes') t
    cross join generate_series(1, 3) s
    cross join generate_series(1, 2) a
    cross join lateral (select hashint8(extract(epoch from t)::int8 * 10 + s * 2 + a) as h) hh
    cross join lateral (select hh.h, hh.h % 9 <> 0 as up) x`;
  await sql`
    insert into location_state (site_id, location_id, check_id, checked_at, seen_at, since, agent_id,
                                consecutive_failures, interval_ms, duration_ms, status, up, acc_hour, acc_checks,
                                acc_up_checks, acc_latency)
    select s, l, gen_random_uuid(), now(), now(), now() - interval '1 day', l, 0, 60000, 80, 200, true,
           ${new Date(
    hour,
  )}, 10 + s, 9 + s, ('[' || 50 + s || ':' || 52 + s || ']={4,NULL,' || s || '}')::int[]
    from generate_series(1, 4) s cross join generate_series(1, 2) l`;
  // Location a of sites q-1..q-3 as the writer keeps it: its latest check, and the counts of the current hour's
  // checks (what a range ending now reads instead of those raw checks).
  await sql`
    update location_state x
    set acc_checks = coalesce(r.checks, 0), acc_up_checks = coalesce(r.up_checks, 0), acc_latency = r.latency,
        checked_at = c.last
    from (select site_id, max(started_at) as last from checks where agent_id = 1 group by 1) c
    left join rollups_from_checks(${new Date(hour)}, ${new Date(hour + HOUR)}, '1 hour') r
      on r.site_id = c.site_id and r.location_id = 1
    where x.site_id = c.site_id and x.location_id = 1`;
  await sql`analyze`;
}

Deno.test("db uptime queries: 0004's functions answer as 0003's", async (t) => {
  const db = await createTestDatabase();
  const { sql } = db;
  const now = Date.now();
  const hour = Math.floor(now / HOUR) * HOUR;
  const today = Math.floor(now / DAY) * DAY;
  const at = (ms: number) => new Date(ms);
  try {
    await migrate(sql, log);
    await fill(sql, now);

    await t.step("the prefix sums follow the rollups, and rebuilding them gives the same rows", async () => {
      await assertPrefixSumsFollow(sql);
      const stored = () =>
        sql`
          select 'day' as level, bucket, site_id, location_id, checks, up_checks, counts_pairs(latency) as latency
          from rollup_month_to_date
          union all
          select 'hour', bucket, site_id, location_id, checks, up_checks, counts_pairs(latency)
          from rollup_day_to_hour
          order by 1, 2, 3, 4`;
      const before = [...await stored()];
      await sql`select rebuild_month_totals(), rebuild_day_to_hour()`;
      await assertPrefixSumsFollow(sql);
      assertEquals([...await stored()], before);
      // From a day on (as the upgrade does for the last 35 days): the days before are left as they are.
      await sql`select rebuild_day_to_hour(${new Date(today - DAY + 5 * HOUR)})`;
      assertEquals([...await stored()], before);
    });

    await t.step(
      "site_uptime() and location_uptime() equal 0003's site_uptime() over the same rows",
      async () => {
        const cases: [string | null, Date, Date, string | null][] = [
          // The monthly report: every site, the last 30 days up to now, one row a site.
          [null, at(now - 30 * DAY), at(now), null],
          // Daily bars, aligned to the day, the current hour included.
          [null, at(today - 29 * DAY), at(today + DAY), "1 day"],
          // Partial hours at both ends, by hour, from raw checks.
          [null, at(hour - 30 * HOUR + 17 * 60_000), at(now), "1 hour"],
          ["q-1", at(today - 35 * DAY + 5 * HOUR), at(now), "1 week"],
          ["q-2", at(today - 38 * DAY), at(today + DAY), "1 month"],
          ["q-1", at(today - 38 * DAY), at(now), "1 year"],
          ["q-3", at(now - 20 * HOUR), at(now), "10 minutes"],
          ["q-1", at(now - 20 * HOUR), at(now + HOUR), "2 hours"],
          ["q-2", at(today - 12 * DAY), at(today - 8 * DAY), "1 day"],
          ["q-5", at(today - 12 * DAY), at(now), "1 day"],
          ["nobody", at(today - 12 * DAY), at(now), "1 day"],
          ["q-1", at(now), at(now - DAY), "1 hour"],
          // One bucket holding whole days, read from prefix sums (sql/0006): each end either adds its partial
          // day's hours or takes them off the whole day, with hourly rows there (the last two days) or not.
          [null, at(today - 35 * DAY + 3 * HOUR), at(today - DAY + 20 * HOUR), null],
          [null, at(today - 2 * DAY + 4 * HOUR + 10 * 60_000), at(now), null],
          [
            null,
            at(today - 2 * DAY + 20 * HOUR + 10 * 60_000),
            at(today - DAY + 2 * HOUR + 30 * 60_000),
            null,
          ],
          ["q-2", at(today - 12 * DAY + 15 * HOUR + 5 * 60_000), at(today - DAY + 5 * HOUR), null],
          ["q-4", at(today - 38 * DAY), at(today - 8 * DAY), null],
          [null, at(today - 15 * DAY), at(today - 13 * DAY - HOUR), null],
          [null, at(today - 400 * DAY), at(now + DAY), null],
        ];
        for (const [site, from, to, width] of cases) {
          const label = `${site} ${from.toISOString()} ${to.toISOString()} ${width}`;
          const expected = [...await before(sql, site, from, to, width)];
          assertEquals([...await after(sql, site, from, to, width)], expected, label);
          const expectedByLocation = [...await before(sql, site, from, to, width, true)];
          assertEquals([...await afterByLocation(sql, site, from, to, width)], expectedByLocation, label);
          if ((site === null || site === "q-1") && from < to) assertEquals(expected.length > 0, true, label);
        }
      },
    );

    await t.step("a report reads its rows once, and merges histograms only for a percentile", async () => {
      for (const fn of ["site_uptime", "location_uptime"]) {
        const plan = async (columns: string, width: string) =>
          (await sql.unsafe(`
            explain (verbose, costs off)
            select ${columns} from ${fn}(null, now() - interval '30 days', now(), ${width})`))
            .map((row) => row["QUERY PLAN"]).join("\n");
        // One bucket over whole days: the month totals' rows (uptime_terms()) are summed once, for the counts
        // and, when one is selected, the percentiles; the other path's calls are behind a test that is false here.
        const counts = await plan("site, checks, uptime_percent", "null");
        assertEquals(counts.includes("uptime_terms"), true, counts);
        assertEquals(counts.includes("latency_sum_signed"), false, counts);
        assertEquals(counts.includes("uptime_percentiles"), false, counts);
        const withP95 = await plan("site, p95_ms", "null");
        assertEquals(
          withP95.includes("latency_quantiles(latency_sum_signed(r.latency, r.sign))"),
          true,
          withP95,
        );
        // By bucket: the counts alone, and the percentiles in a join that is kept only when one is selected.
        const daily = await plan("site, checks, uptime_percent", "'1 day'");
        assertEquals(daily.includes("uptime_counts"), true, daily);
        assertEquals(daily.includes("uptime_percentiles"), false, daily);
        assertEquals((await plan("site, p95_ms", "'1 day'")).includes("uptime_percentiles"), true, fn);
      }
    });

    await t.step(
      "latency_quantiles(latency_sum()) gives latency_percentile(latency_merge())'s values",
      async () => {
        const rows = await sql<{ group: number; sum: number[]; merge: number[] }[]>`
        with h as (
          select g, ('[' || lo || ':' || lo + n - 1 || ']=' || array(
                    select case when hashint4(g * 1000 + i * 10 + k) % 5 = 0 then null
                                else abs(hashint4(g * 1000 + i * 10 + k)) % 1000 end
                    from generate_series(1, n) k)::text)::int[] as latency
          from generate_series(1, 40) g
          cross join generate_series(1, 1 + g % 7) i
          cross join lateral (select abs(hashint4(g * 100 + i)) % 160 as lo0) a
          cross join lateral (select least(lo0, 150) as lo, 1 + abs(hashint4(g + i)) % 10 as n) b
        )
        select g as group, latency_quantiles(latency_sum(latency)) as sum,
               array[latency_percentile(latency_merge(latency), 0.5), latency_percentile(latency_merge(latency), 0.95),
                     latency_percentile(latency_merge(latency), 0.99)] as merge
        from h group by g order by g`;
        assertEquals(rows.length, 40);
        for (const row of rows) assertEquals(row.sum, row.merge, `group ${row.group}`);
        const [empty] = await sql`
        select latency_quantiles(latency_sum(h)) as q from (values (null::int[]), ('{0,0}'::int[])) v(h)`;
        assertEquals(empty?.q, null);
      },
    );

    await t.step("percent_up() rounds as round(100.0 * up / checks, 3) does", async () => {
      const [row] = await sql`
        select count(*)::int as n,
               count(*) filter (where percent_up(c, u)::text <> round(100.0 * u / c, 3)::text)::int as differ
        from generate_series(1, 700) c cross join generate_series(0, 700) u where u <= c`;
      assertEquals(row, { n: 246_050, differ: 0 });
    });

    await t.step(
      "site_daily_bars() gives site_uptime()'s days, one row a site, null for days without checks",
      async () => {
        const rows = await sql<
          { site: string; first_day: Date; bars: string; days: string }[]
        >`
        with b as (select * from site_daily_bars(15))
        select b.site, b.first_day, array_to_string(b.uptime_percent, ',', '-') as bars,
               array_to_string(array(select u.uptime_percent
                     from generate_series(0, 14) g
                     left join site_uptime(b.site, b.first_day, b.first_day + interval '15 days', '1 day') u
                       on u.bucket = b.first_day + g * interval '1 day'
                     order by g), ',', '-') as days
        from b order by b.site`;
        assertEquals(rows.map((row) => row.site), ["q-1", "q-2", "q-3", "q-4", "q-5"]);
        for (const row of rows) {
          assertEquals(row.first_day.getTime(), today - 14 * DAY);
          assertEquals(row.bars, row.days, row.site);
        }
        const nulls = (site: string) =>
          rows.find((row) => row.site === site)!.bars.split(",").map((v) => v === "-");
        // q-2: no checks 10 days ago (element 4); q-3: none before 5 days ago; q-5: none at all.
        assertEquals(nulls("q-1").filter(Boolean).length, 0);
        assertEquals(nulls("q-2").indexOf(true), 4);
        assertEquals(nulls("q-2").filter(Boolean).length, 1);
        assertEquals(nulls("q-3"), [...Array(9).fill(true), ...Array(6).fill(false)]);
        assertEquals(nulls("q-5"), Array(15).fill(true));
        await assertRejects(
          () => sql`select * from site_daily_bars(0)`,
          Error,
          "Cannot read daily bars as 'days' must be a positive integer: current value is 0",
        );
      },
    );

    await t.step(
      "a day without prefix sums for a location, or for every location, is read from its hourly rows",
      async () => {
        const cases: [Date, Date][] = [
          [at(today - 2 * DAY + 4 * HOUR + 10 * 60_000), at(now)],
          [at(today - 2 * DAY + 20 * HOUR), at(today - DAY + 2 * HOUR + 30 * 60_000)],
        ];
        const compare = async (label: string) => {
          for (const [from, to] of cases) {
            assertEquals([...await after(sql, null, from, to, null)], [
              ...await before(sql, null, from, to, null),
            ], label);
            assertEquals(
              [...await afterByLocation(sql, null, from, to, null)],
              [...await before(sql, null, from, to, null, true)],
              label,
            );
          }
        };
        // q-1 from location a: none on either day (as for a day before the upgrade that a late check touched).
        await sql`
          delete from rollup_day_to_hour
          where site_id = 1 and location_id = 1 and bucket >= ${at(today - 2 * DAY)} and bucket < ${
          at(today)
        }`;
        await compare("one location without");
        // No location: the whole day is read from its hourly rows.
        await sql`delete from rollup_day_to_hour where bucket >= ${at(today - 2 * DAY)} and bucket < ${
          at(today)
        }`;
        await compare("no location");
      },
    );
  } finally {
    await db.drop();
  }
});
