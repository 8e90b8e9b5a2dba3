import type postgres from "postgres";
import { assertEquals } from "./_assert.ts";
import { assertPrefixSumsFollow } from "./_prefix_sums.ts";
import { createTestDatabase } from "./_pg.ts";
import { histogramLiteral, LATENCY_THRESHOLDS, latencyBucket, latencyMidpoint } from "../src/db/latency.ts";
import { migrate } from "../src/db/migrate.ts";
import { maintainPartitions } from "../src/db/partitions.ts";
import { maintainRollupPartitions, rollupPartition } from "../src/db/rollup_partitions.ts";
import { accumulate, EMPTY_ACCUMULATOR, parseCounts, toPeriod } from "../src/db/rollups.ts";
import { StateCache } from "../src/db/state_cache.ts";
import type { Batch } from "../src/db/batch.ts";
import { writeBatch } from "../src/db/writer.ts";
import { silentLogger as log } from "../src/log.ts";
import type { CheckResult, ErrorKind } from "../src/message.ts";
import { DAY, HOUR, locationCheck } from "./_history_checks.ts";

/** Asserts a condition, with a message that shows the values involved. */
const holds = (condition: boolean, message = "condition does not hold") =>
  assertEquals(condition, true, message);

function check(
  site: string,
  region: string,
  at: number,
  up: boolean,
  durationMs: number,
  kind: ErrorKind = "http",
): CheckResult {
  return locationCheck(site, region, at, {
    up,
    status: up ? 200 : null,
    duration_ms: durationMs,
    error: up ? null : { kind, message: `failed: ${kind}` },
  });
}

function batchAt(group: string, first: number, checks: readonly CheckResult[]): Batch {
  return {
    group,
    topic: "monitor.checks",
    checks: checks.map((c, i) => ({ partition: 0, offset: String(first + i), check: c })),
    deadLetters: [],
    progress: [{ partition: 0, firstOffset: String(first), nextOffset: String(first + checks.length) }],
  };
}

/** Rollup rows as text, their error and latency counts as (subscript:count) pairs: what is stored (tables plus
 * the current-hour counts in location_state) or what a recomputation from raw checks gives. */
async function rollupCounts(sql: postgres.Sql, source: "stored" | "from_checks", width: string) {
  const rows = await sql<{ line: string }[]>`
    select to_char(bucket at time zone 'UTC', 'YYYY-MM-DD HH24') || ' ' || site_id || '/' || location_id || ' ' ||
           checks || '/' || up_checks || ' e[' || coalesce(counts_pairs(error_counts), '') || '] l[' ||
           coalesce(counts_pairs(latency), '') || ']' as line
    from ${source === "stored" ? sql`rollups_stored` : sql`rollups_from_checks`}('-infinity', 'infinity',
                                                                                    ${width}::interval)
    order by 1`;
  return rows.map((r) => r.line);
}

/** site_daily (sql/0005) holds rollup_daily's sums over locations, one row per site and day, none empty. */
async function assertSiteDailyFollows(sql: postgres.Sql): Promise<void> {
  const lines = (rows: { line: string }[]) => rows.map((r) => r.line);
  const expected = lines(
    await sql<{ line: string }[]>`
      select to_char(bucket at time zone 'UTC', 'YYYY-MM-DD') || ' ' || site_id || ' ' || sum(checks) || '/' ||
             sum(up_checks) as line
      from rollup_daily group by bucket, site_id order by 1`,
  );
  const actual = lines(
    await sql<{ line: string }[]>`
      select to_char(bucket at time zone 'UTC', 'YYYY-MM-DD') || ' ' || site_id || ' ' || checks || '/' ||
             up_checks as line
      from site_daily where checks <> 0 or up_checks <> 0 order by 1`,
  );
  assertEquals(actual, expected);
  holds(expected.length > 0, "no daily rollups");
}

/** One write of {@linkcode randomHistory}: a batch, the sink's clock, and whether it is a replay. */
interface HistoryWrite {
  readonly batch: Batch;
  readonly now: Date;
  readonly replay: boolean;
}

/**
 * 60 random batches of three sites seen from two locations, crossing an hour and midnight: about 1 in 10 checks
 * an hour or a day late, a producer retry now and then, and the last two batches replayed every seventh round
 * (a sink killed after committing but before Kafka learnt it).
 */
function randomHistory(): { writes: HistoryWrite[]; late: number } {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const kinds: ErrorKind[] = ["dns", "connect", "timeout", "http"];
  // 22:30 UTC: the run crosses an hour boundary and midnight.
  let clock = Date.UTC(2026, 10, 20, 22, 30);
  const sent: CheckResult[][] = []; // every batch as first sent, by offset
  const writes: HistoryWrite[] = [];
  let offset = 0;
  let late = 0;
  for (let round = 0; round < 60; round++) {
    const checks: CheckResult[] = [];
    for (let n = 1 + Math.floor(random() * 12); n > 0; n--) {
      clock += Math.floor(random() * 40_000);
      const roll = random();
      const at = roll < 0.06 ? clock - HOUR : roll < 0.1 ? clock - DAY : clock;
      if (at !== clock) late++;
      const up = random() < 0.8;
      checks.push(check(
        `site-${Math.floor(random() * 3)}`,
        random() < 0.5 ? "eu" : "us",
        at,
        up,
        Math.exp(3 + 2 * random()),
        kinds[Math.floor(random() * kinds.length)],
      ));
    }
    // A producer retry: a check published again at a new offset.
    if (round % 9 === 4 && sent.length > 0) checks.push(sent[sent.length - 1]![0]!);
    const now = new Date(clock + 1000);
    writes.push({ batch: batchAt("g", offset, checks), now, replay: false });
    sent.push(checks);
    offset += checks.length;
    if (round % 7 === 6) {
      const again = [...sent[sent.length - 2]!, ...sent[sent.length - 1]!];
      writes.push({ batch: batchAt("g", offset - again.length, again), now, replay: true });
    }
  }
  return { writes, late };
}

/** Writes {@linkcode randomHistory}'s batches in order; a replay must store nothing. */
async function applyHistory(
  sql: postgres.Sql,
  writes: readonly HistoryWrite[],
  options: { cache?: StateCache; clearEvery?: number | undefined; sliceChecks?: number } = {},
): Promise<void> {
  for (const [i, { batch, now, replay }] of writes.entries()) {
    if (options.clearEvery !== undefined && i % options.clearEvery === 0) options.cache?.clear();
    const result = await writeBatch(sql, batch, {
      now,
      ...(options.cache ? { cache: options.cache } : {}),
      ...(options.sliceChecks ? { sliceChecks: options.sliceChecks } : {}),
    });
    if (replay) assertEquals([result.stored, result.skipped], [0, batch.checks.length]);
  }
}

/** The state rows and rollups a writer leaves, as text, without the columns that hold the wall clock. */
async function stateRows(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ line: string }[]>`
    select 'l ' || (l.*)::text as line from (
      select site_id, location_id, check_id, checked_at, seen_at, since, agent_id, consecutive_failures, interval_ms,
             duration_ms, status, up, error_kind, error_message, acc_hour, acc_checks, acc_up_checks,
             acc_error_counts, acc_latency
      from location_state) l
    union all select 's ' || (s.site_id, s.state, s.since)::text from site_state s
    union all
    select 'i ' || (i.site_id, i.started_at, i.ended_at, i.worst_state, i.location_ids, i.first_error_kind,
                    i.first_error_message)::text from site_incidents i
    union all select 'h ' || (h.*)::text from rollup_hourly h
    union all select 'd ' || (d.*)::text from rollup_daily d
    order by 1`;
  return rows.map((r) => r.line);
}

Deno.test("accumulate() keeps the current hour, moves it out at the next hour, and passes late checks on", () => {
  const c = (minute: number, up = true) => ({
    siteId: 1,
    locationId: 2,
    micros: BigInt(Date.UTC(2026, 10, 20, 10, minute)) * 1000n,
    up,
    durationMs: 40,
    errorKind: up ? null : "timeout" as const,
  });
  const horizon = BigInt(Date.UTC(2026, 10, 20, 12)) * 1000n;
  const first = accumulate(EMPTY_ACCUMULATOR, [c(0), c(30, false)], horizon, true);
  assertEquals(first.deltas, []);
  assertEquals(first.accumulator, {
    hour: BigInt(Date.UTC(2026, 10, 20, 10)) * 1000n,
    checks: 2,
    upChecks: 1,
    errors: new Map([[4, 1]]),
    latency: new Map([[latencyBucket(40), 1]]),
  });
  const next = accumulate(first.accumulator, [c(-1), c(70)], horizon, true);
  // The late check (09:59) and the finished hour (10:00) become deltas; 11:10 starts a new hour.
  assertEquals(
    toPeriod(next.deltas, "hourly").map((d) => [new Date(Number(d.bucket / 1000n)).toISOString(), d.checks]),
    [["2026-11-20T09:00:00.000Z", 1], ["2026-11-20T10:00:00.000Z", 2]],
  );
  assertEquals(toPeriod(next.deltas, "daily").map((d) => d.checks), [3]);
  assertEquals([next.accumulator.hour, next.accumulator.checks], [
    BigInt(Date.UTC(2026, 10, 20, 11)) * 1000n,
    1,
  ]);
  // A check far in the future never becomes the current hour.
  const ahead = accumulate(next.accumulator, [{ ...c(0), micros: horizon + 1n }], horizon, true);
  assertEquals([ahead.accumulator.checks, ahead.deltas.length], [1, 1]);
});

Deno.test("parseCounts() reads PostgreSQL's array text with and without explicit bounds", () => {
  assertEquals(parseCounts(null), new Map());
  assertEquals(parseCounts("{0,2,1}"), new Map([[2, 2], [3, 1]]));
  assertEquals(parseCounts("[47:49]={3,NULL,1}"), new Map([[47, 3], [49, 1]]));
  assertEquals(parseCounts("[0:0]={5}"), new Map([[0, 5]]));
});

Deno.test("db rollups", async (t) => {
  const db = await createTestDatabase();
  const { sql } = db;
  let history: HistoryWrite[] = [];
  try {
    await migrate(sql, log);

    await t.step("the latency thresholds of the database and of latency.ts are the same", async () => {
      const [row] = await sql<{ t: number[] }[]>`select latency_thresholds() as t`;
      assertEquals(row?.t, [...LATENCY_THRESHOLDS]);
      const samples = [0, 0.999, 1, 1.08, 40.25, 999.9, 190_964, 190_965, 86_400_000];
      const [buckets] = await sql<{ b: number[] }[]>`
        select array_agg(latency_bucket(d) order by n) as b from unnest(${samples}::real[]) with ordinality as t(d, n)`;
      assertEquals(buckets?.b, samples.map(latencyBucket));
    });

    await t.step(
      "rollups equal a recomputation from raw checks after random batches, redelivery, replays and late checks",
      async () => {
        const { writes, late } = randomHistory();
        history = writes;
        await applyHistory(sql, writes);
        holds(late > 10, `only ${late} late checks`);
        const [counts] = await sql<{ hourly: number; daily: number; current: number }[]>`
          select (select count(*)::int from rollup_hourly) as hourly, (select count(*)::int from rollup_daily) as daily,
                 (select count(*)::int from location_state where acc_checks > 0) as current`;
        holds(counts!.hourly > 10 && counts!.daily > 5 && counts!.current > 0, JSON.stringify(counts));
        for (const width of ["1 hour", "1 day"]) {
          const stored = await rollupCounts(sql, "stored", width);
          assertEquals(stored, await rollupCounts(sql, "from_checks", width), width);
          holds(stored.length > 10, `${stored.length} rows`);
        }
        await assertSiteDailyFollows(sql);
        await assertPrefixSumsFollow(sql);
        // site_uptime over hour-aligned ranges, by hour and by day, counts exactly what raw checks give.
        const raw = await sql`
          select s.name as site, date_bin('1 day', c.started_at, '2000-01-03') as bucket, count(*)::int as checks,
                 count(*) filter (where c.up)::int as up_checks
          from checks c join sites s on s.id = c.site_id
          where c.started_at >= '2026-11-19T00:00:00Z' and c.started_at < '2026-11-23T00:00:00Z'
          group by 1, 2 order by 1, 2`;
        const daily = await sql`
          select site, bucket, checks::int, up_checks::int
          from site_uptime(null, '2026-11-19T00:00:00Z', '2026-11-23T00:00:00Z', '1 day')`;
        assertEquals([...daily], [...raw]);
        const [hourly] = await sql<{ n: number }[]>`
          select sum(checks)::int as n from site_uptime(null, '2026-11-19T00:00:00Z', '2026-11-23T00:00:00Z', '1 hour')`;
        assertEquals(hourly?.n, raw.reduce((sum, r) => sum + r.checks, 0));
        // One bucket over whole days and partial ones, read from the prefix sums the triggers kept: the counts and
        // percentiles of the raw checks of the range.
        for (
          const [from, to] of [
            ["2026-11-19T05:00:00Z", "2026-11-21T03:00:00Z"],
            ["2026-11-19T13:00:00Z", "2026-11-22T00:00:00Z"],
            ["2026-11-19T00:00:00Z", "2026-11-21T23:00:00Z"],
          ] as const
        ) {
          const fromRaw = await sql`
            select s.name as site, count(*)::int as checks, count(*) filter (where c.up)::int as up_checks,
                   latency_percentile(latency_merge(case when c.up then array_fill(1, array[1],
                                        array[latency_bucket(c.duration_ms)]) end), 0.95) as p95_ms
            from checks c join sites s on s.id = c.site_id
            where c.started_at >= ${from} and c.started_at < ${to}
            group by 1 order by 1`;
          const whole = await sql`
            select site, checks::int, up_checks::int, p95_ms from site_uptime(null, ${from}, ${to}, null)`;
          assertEquals([...whole], [...fromRaw], `${from} ${to}`);
          holds(fromRaw.length > 0, `no checks ${from} ${to}`);
        }
      },
    );

    await t.step(
      "with the state cache the writer leaves the same rows, and a stale copy fails the batch",
      async () => {
        const copies = [await createTestDatabase(), await createTestDatabase()];
        try {
          // One copy cleared every fifth batch (sites both held and read back), one never cleared.
          for (const [copy, clearEvery] of [[copies[0]!, 5], [copies[1]!, undefined]] as const) {
            await migrate(copy.sql, log);
            await applyHistory(copy.sql, history, { cache: new StateCache(), clearEvery });
            assertEquals(await stateRows(copy.sql), await stateRows(sql));
          }
          // Another writer (no cache) moves site-0's "eu" row; the cache still holds the old one.
          const cached = copies[1]!.sql;
          const cache = new StateCache();
          const last = history.at(-1)!;
          const offset = Number(last.batch.progress[0]!.nextOffset);
          const at = last.now.getTime() + 60_000;
          const seed = batchAt("g", offset, [
            check("site-0", "eu", at, true, 50),
            check("site-0", "us", at, true, 50),
          ]);
          await writeBatch(cached, seed, { now: new Date(at + 1000), cache });
          const other = {
            ...batchAt("g", offset + 2, [check("site-0", "eu", at + 30_000, false, 50)]),
            group: "h",
          };
          await writeBatch(cached, other, { now: new Date(at + 31_000) });
          const stale = batchAt("g", offset + 2, [check("site-0", "us", at + 30_000, false, 50)]);
          const refused = await writeBatch(cached, stale, { now: new Date(at + 31_000), cache }).then(
            () => null,
            (error: { code?: string }) => error.code,
          );
          assertEquals(refused, "40001");
          // Taken out of the copy by the failed batch, the site is read back: the retry stores it.
          const retried = await writeBatch(cached, stale, { now: new Date(at + 31_000), cache });
          assertEquals(retried.stored, 1);
          const [state] = await cached<{ state: string; down: number }[]>`
          select s.state, (select count(*)::int from location_state l where l.site_id = s.site_id and not l.up) as down
          from site_state s join sites n on n.id = s.site_id where n.name = 'site-0'`;
          assertEquals(state, { state: "down", down: 2 });
        } finally {
          for (const copy of copies) await copy.drop();
        }
      },
    );

    await t.step(
      "checks inserted in slices of one or two leave the same rows, with and without the cache",
      async () => {
        const copies = [await createTestDatabase(), await createTestDatabase()];
        try {
          holds(history.some(({ batch }) => batch.checks.length > 2), "no batch of several slices");
          for (
            const [copy, options] of [[copies[0]!, { sliceChecks: 1 }], [copies[1]!, {
              sliceChecks: 2,
            }]] as const
          ) {
            await migrate(copy.sql, log);
            await applyHistory(copy.sql, history, { ...options, cache: new StateCache(), clearEvery: 4 });
            assertEquals(await stateRows(copy.sql), await stateRows(sql));
            // The same checks, each once (a producer retry's second copy, in another slice, is a duplicate).
            const [raw] = await copy.sql<{ n: number }[]>`select count(*)::int as n from checks`;
            const [whole] = await sql<{ n: number }[]>`select count(*)::int as n from checks`;
            assertEquals(raw?.n, whole?.n);
          }
        } finally {
          for (const copy of copies) await copy.drop();
        }
      },
    );

    await t.step(
      "percentiles from histograms are within 5 % of percentile_cont over log-normal durations",
      async () => {
        let seed = 11;
        const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
        const hour = Date.UTC(2026, 10, 10, 10);
        const checks: CheckResult[] = [];
        for (let i = 0; i < 3000; i++) {
          // Box-Muller: median 120 ms, sigma 0.8.
          const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
          checks.push(
            check("latency", i % 2 === 0 ? "eu" : "us", hour + i * 1000, true, 120 * Math.exp(0.8 * z)),
          );
        }
        for (let i = 0; i < checks.length; i += 500) {
          await writeBatch(sql, batchAt("p", i, checks.slice(i, i + 500)), { now: new Date(hour + HOUR) });
        }
        const [exact] = await sql<{ p: number[] }[]>`
        select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by duration_ms) as p
        from checks c join sites s on s.id = c.site_id where s.name = 'latency'`;
        for (const [from, to] of [[hour, hour + HOUR], [hour + 1234, hour + HOUR]] as const) {
          const [row] = await sql<{ p50_ms: number; p95_ms: number; p99_ms: number; checks: string }[]>`
          select * from site_uptime('latency', ${new Date(from)}, ${new Date(to)}, null)`;
          const got = [row!.p50_ms, row!.p95_ms, row!.p99_ms];
          got.forEach((value, i) => {
            const error = Math.abs(value - exact!.p[i]!) / exact!.p[i]!;
            holds(
              error < 0.05,
              `p${[50, 95, 99][i]} ${value} vs ${exact!.p[i]} (${(error * 100).toFixed(2)} %)`,
            );
            assertEquals(Math.round(value * 10) / 10, value);
          });
        }
        assertEquals(latencyMidpoint(latencyBucket(40.25)), 41.8);
      },
    );

    await t.step(
      "buckets of an hour, a day, a week, a calendar month, and null for the whole range",
      async () => {
        const start = Date.UTC(2026, 0, 30, 23); // Friday 2026-01-30 23:00 UTC
        const checks = [0, 1, 2, 3, 4].map((d) => check("buckets", "eu", start + d * DAY, d !== 2, 50));
        await writeBatch(sql, batchAt("b", 0, checks), { now: new Date(start + 5 * DAY) });
        const rows = async (width: string | null) =>
          (await sql`
          select bucket, checks::int, up_checks::int
          from site_uptime('buckets', '2026-01-30T00:00:00Z', '2026-02-05T00:00:00Z', ${width}::interval)`)
            .map((r) => [(r.bucket as Date).toISOString().slice(0, 13), r.checks, r.up_checks]);
        assertEquals(await rows("1 month"), [["2026-01-01T00", 2, 2], ["2026-02-01T00", 3, 2]]);
        assertEquals(await rows("1 week"), [["2026-01-26T00", 3, 2], ["2026-02-02T00", 2, 2]]);
        assertEquals((await rows("1 day")).length, 5);
        assertEquals(
          await rows("1 hour"),
          checks.map((c, i) => [c.started_at.slice(0, 13), 1, i === 2 ? 0 : 1]),
        );
        assertEquals(await rows(null), [["2026-01-30T00", 5, 4]]);
        assertEquals(await rows("1 year"), [["2026-01-01T00", 5, 4]]);
      },
    );

    await t.step(
      "after raw partitions past retention are dropped, site_uptime counts stay the same",
      async () => {
        const day0 = Date.UTC(2026, 9, 1); // 2026-10-01
        await maintainPartitions(sql, { now: new Date(day0), aheadDays: 8, retentionDays: 0, log });
        await maintainRollupPartitions(sql, { now: new Date(day0), log });
        const checks: CheckResult[] = [];
        for (let h = 0; h < 6 * 24; h += 5) {
          checks.push(check("kept", "eu", day0 + h * HOUR + 17 * 60_000, h % 3 !== 0, 80));
        }
        await writeBatch(sql, batchAt("r", 0, checks), { now: new Date(day0 + 6 * DAY) });
        const ranges: [string, string, string | null][] = [
          ["2026-10-01T00:00:00Z", "2026-10-07T00:00:00Z", "1 day"],
          ["2026-10-01T00:00:00Z", "2026-10-07T00:00:00Z", null],
          ["2026-10-02T05:00:00Z", "2026-10-06T00:00:00Z", "1 hour"],
        ];
        const answers = async () => {
          const all = [];
          for (const [from, to, width] of ranges) {
            all.push(
              [
                ...await sql`select bucket, checks::int, up_checks::int
                           from site_uptime('kept', ${from}, ${to}, ${width}::interval)`,
              ],
            );
          }
          return all;
        };
        const before = await answers();
        const report = await maintainPartitions(sql, {
          now: new Date(day0 + 5 * DAY),
          retentionDays: 2,
          log,
        });
        // 2026-10-06 - 2 days = 2026-10-04: the partitions of 09-30 (made as "yesterday") to 10-03 go.
        assertEquals(report.dropped, [
          "checks_p20260930",
          "checks_p20261001",
          "checks_p20261002",
          "checks_p20261003",
        ]);
        const [raw] = await sql<{ n: number }[]>`
        select count(*)::int as n from checks c join sites s on s.id = c.site_id where s.name = 'kept'`;
        holds(raw!.n < checks.length, `${raw!.n} raw checks left of ${checks.length}`);
        assertEquals(await answers(), before);
        assertEquals(before[1]![0]!.checks, checks.length);
      },
    );

    await t.step(
      "rollup partitions are made by month and year and dropped whole past their retention",
      async () => {
        assertEquals(rollupPartition("rollup_hourly", new Date("2026-12-31T23:00:00Z")), {
          table: "rollup_hourly",
          name: "rollup_hourly_p202612",
          from: "2026-12-01T00:00:00Z",
          to: "2027-01-01T00:00:00Z",
        });
        const report = await maintainRollupPartitions(sql, {
          now: new Date("2027-12-01T00:00:00Z"),
          hourlyRetentionDays: 30,
          dailyRetentionDays: 0,
          log,
        });
        // rollup_daily_p2027 was made a year ahead by the step before.
        assertEquals(report.created, [
          "rollup_hourly_p202712",
          "rollup_hourly_p202801",
          "rollup_day_to_hour_p202712",
          "rollup_day_to_hour_p202801",
          "rollup_daily_p2028",
          "site_daily_p2028",
          "rollup_monthly_p2028",
          "rollup_month_to_date_p2028",
        ]);
        // 2027-12-01 - 30 days = 2027-11-01: every month that ended by then goes (rows that sat in the default
        // partition too); daily rollups are kept forever.
        assertEquals(report.dropped, [
          "rollup_hourly_p202610",
          "rollup_hourly_p202611",
          "rollup_day_to_hour_p202610",
          "rollup_day_to_hour_p202611",
        ]);
        const [row] = await sql<{ hourly: number; daily: number }[]>`
        select (select count(*)::int from rollup_hourly) as hourly,
               (select count(*)::int from rollup_daily where bucket >= '2026-10-01' and bucket < '2026-11-01') as daily`;
        assertEquals(row, { hourly: 0, daily: 6 });
        await assertSiteDailyFollows(sql);
        await assertPrefixSumsFollow(sql);
      },
    );
  } finally {
    await db.drop();
  }
});

Deno.test("daily retention with its cutoff inside a month of the default partition keeps that month's totals for the days left", async () => {
  const db = await createTestDatabase("monitor_rollups");
  const { sql } = db;
  try {
    await migrate(sql, log);
    // Partitions for 2026 and 2027 only: checks of late 2025 (an outbox flushed a year late) go to the defaults.
    const now = new Date("2026-12-01T00:00:00Z");
    await maintainRollupPartitions(sql, { now, dailyRetentionDays: 0, log });
    const checks: CheckResult[] = [];
    for (let at = Date.UTC(2025, 10, 20); at < Date.UTC(2025, 11, 10); at += HOUR) {
      checks.push(check("late", "eu", at, true, 40));
    }
    await writeBatch(sql, batchAt("m", 0, checks), { now });
    const days = async (width: string | null) =>
      (await sql`select sum(checks)::int as checks from site_uptime('late', '2025-11-26T00:00:00Z',
        '2025-11-30T00:00:00Z', ${width}::interval)`)[0]!.checks;
    assertEquals([await days("1 day"), await days(null)], [96, 96]);
    // 371 days before 2026-12-01: the cutoff is 2025-11-25, inside November.
    await maintainRollupPartitions(sql, { now, dailyRetentionDays: 371, log });
    assertEquals([await days("1 day"), await days(null)], [96, 96]);
    const [left] = await sql`select count(*)::int as days from rollup_daily where bucket < '2025-11-25'`;
    assertEquals(left!.days, 0);
    await assertPrefixSumsFollow(sql);
  } finally {
    await db.drop();
  }
});

Deno.test("histogramLiteral() writes the non-empty range of buckets with their subscripts, gaps as 0", () => {
  assertEquals(histogramLiteral(new Map([[49, 1], [47, 3]])), "[47:49]={3,0,1}");
  assertEquals(histogramLiteral(new Map([[0, 2]])), "[0:0]={2}");
  assertEquals(histogramLiteral(new Map()), null);
});
