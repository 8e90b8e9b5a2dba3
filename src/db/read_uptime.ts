/**
 * "How available and how fast was each site?": uptime over the last 24 hours, 7 and 30 days with the p95 of
 * the last 24 hours, per-bucket series (hours, days) for charts, and the same per location.
 *
 * Read from the hourly and daily rollups (`rollup_hourly`, `rollup_daily`) plus the counts of each location's
 * current hour, which the writer keeps in its `location_state` row (`acc_*`) until a later hour begins: all
 * written in the checks' transaction, so the figures are current. Not from `site_uptime()`: measured on a
 * year of rollups for 1,000 sites, one call of 0003's took 600–870 ms, and 1.6 s per site when called for each
 * site of a page (bench/serve/main.ts); 0004's takes about 13 ms for one site's 30 days (bench/db/history.ts),
 * still more than these statements for a page of sites.
 * Periods are whole rollup buckets (aligned to the UTC hour and day, as `site_uptime()`'s rollup tier is):
 * "24 h" is the current hour and the 23 before it, "7 d" and "30 d" today and the 6 or 29 days before.
 * Percentiles are merged in the program (see `_latency_merge.ts`) with `latency_percentile()`'s rule.
 *
 * @module
 */
import type postgres from "postgres";
import { textArray } from "./_arrays.ts";
import { emptyHistogram, type Histogram, histogramPercentile, mergeHistograms } from "./_latency_merge.ts";

/** One bucket of a site's (or location's) figures. */
export interface UptimeBucket {
  readonly site: string;
  /** Start of the bucket. */
  readonly bucket: Date;
  readonly checks: number;
  readonly upChecks: number;
  readonly uptimePercent: number | null;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  /** The bucket's merged latency histogram, when read with percentiles (for merging buckets further). */
  readonly histogram?: Histogram;
}

/** A site's (or a location's) headline figures. */
export interface UptimeSummary {
  readonly uptime24h: number | null;
  readonly uptime7d: number | null;
  readonly uptime30d: number | null;
  readonly p95Ms24h: number | null;
}

/** Width of a series: the rollup it is read from. */
export type BucketWidth = "hour" | "day";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Uptime as `site_uptime()` rounds it: percent with three decimals; null without checks. */
export function uptimePercent(checks: number, upChecks: number): number | null {
  return checks === 0 ? null : Math.round((100_000 * upChecks) / checks) / 1000;
}

/** Start of the hour `hours - 1` before `now`'s: with the current one, `hours` hourly buckets. */
function hoursBack(now: Date, hours: number): Date {
  return new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS);
}

/** Start of the UTC day `days - 1` before `now`'s: with today, `days` daily buckets. */
function daysBack(now: Date, days: number): Date {
  return new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS - (days - 1) * DAY_MS);
}

interface SummaryRow {
  key: string;
  checks: number;
  up_checks: number;
  /** The rows' histograms as text, separated by ';' (one text column: postgres.js parses a text[] of them
   * several times slower, measured 1.6 s against 0.6 s for 1,000 sites' 24 hours). */
  histograms: string | null;
  checks_7d: number;
  up_checks_7d: number;
}

const ORIGIN = "2000-01-03 00:00:00+00";

/**
 * The rollup rows of a width for one site of the statement's `p` (a LATERAL subquery on `p.id`) from `from` to
 * `to`, each location's current hour (kept in `location_state`) included: `(location_id, bucket, checks,
 * up_checks, latency)`. Per site, so each site is an index range scan: for every site at once, a join let the
 * planner scan the whole year's daily partition (1.3 s for 1,000 sites against 0.4 s this way, measured).
 */
function rollupsOf(sql: postgres.Sql, width: BucketWidth, from: Date, to: Date) {
  const table = width === "hour" ? sql`rollup_hourly` : sql`rollup_daily`;
  return sql`lateral (
    select location_id, bucket, checks, up_checks, latency from ${table}
    where site_id = p.id and bucket >= ${from} and bucket <= ${to}
    union all
    select location_id, date_bin(${width === "hour" ? "1 hour" : "1 day"}::interval, acc_hour,
                                 ${ORIGIN}::timestamptz),
           acc_checks, acc_up_checks, acc_latency
    from location_state
    where site_id = p.id and acc_hour >= ${from} and acc_hour <= ${to}
  )`;
}

/** The sites a statement reads: by name, or every site (null). */
function picked(sql: postgres.Sql, sites: readonly string[] | null) {
  return sites === null
    ? sql`select id, name from sites`
    : sql`select id, name from sites where name = any(${textArray(sites)}::text[])`;
}

async function summaries(
  sql: postgres.Sql,
  sites: readonly string[] | null,
  now: Date,
  byLocation: boolean,
): Promise<Map<string, UptimeSummary>> {
  if (sites !== null && sites.length === 0) return new Map();
  const key = byLocation ? sql`l.name` : sql`p.name`;
  const locations = byLocation ? sql`join locations l on l.id = r.location_id` : sql``;
  const [hourly, daily] = await Promise.all([
    sql<SummaryRow[]>`
      with p as (${picked(sql, sites)})
      select ${key} as key, sum(r.checks)::int8 as checks, sum(r.up_checks)::int8 as up_checks,
             string_agg(r.latency::text, ';') filter (where r.latency is not null) as histograms,
             0 as checks_7d, 0 as up_checks_7d
      from p cross join ${rollupsOf(sql, "hour", hoursBack(now, 24), now)} r ${locations}
      group by 1`,
    sql<SummaryRow[]>`
      with p as (${picked(sql, sites)})
      select ${key} as key, sum(r.checks)::int8 as checks, sum(r.up_checks)::int8 as up_checks, null::text as histograms,
             coalesce(sum(r.checks) filter (where r.bucket >= ${daysBack(now, 7)}), 0)::int8 as checks_7d,
             coalesce(sum(r.up_checks) filter (where r.bucket >= ${
      daysBack(now, 7)
    }), 0)::int8 as up_checks_7d
      from p cross join ${rollupsOf(sql, "day", daysBack(now, 30), now)} r ${locations}
      group by 1`,
  ]);
  const out = new Map<string, UptimeSummary>();
  for (const row of daily) {
    out.set(row.key, {
      uptime24h: null,
      p95Ms24h: null,
      uptime7d: uptimePercent(Number(row.checks_7d), Number(row.up_checks_7d)),
      uptime30d: uptimePercent(Number(row.checks), Number(row.up_checks)),
    });
  }
  for (const row of hourly) {
    const entry = out.get(row.key) ?? { uptime24h: null, uptime7d: null, uptime30d: null, p95Ms24h: null };
    out.set(row.key, {
      ...entry,
      uptime24h: uptimePercent(Number(row.checks), Number(row.up_checks)),
      p95Ms24h: histogramPercentile(mergeHistograms(row.histograms?.split(";") ?? null), 0.95),
    });
  }
  return out;
}

/**
 * Uptime over the last 24 hours, 7 days and 30 days (whole rollup buckets, see the module notes), and the p95 of
 * the last 24 hours, of each site in `sites` (null: every site), by site name. A site without checks in a
 * period has null there.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * declare const page: { now: Date };
 * const figures = await readUptimeSummary(sql, ["shop", "api"], page.now);
 * figures.get("shop")?.uptime30d; // 99.953
 * ```
 */
export function readUptimeSummary(
  sql: postgres.Sql,
  sites: readonly string[] | null,
  now: Date,
): Promise<Map<string, UptimeSummary>> {
  return summaries(sql, sites, now, false);
}

/**
 * The same figures per location of one site, by location name.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * declare const now: Date;
 * (await readLocationUptimeSummary(sql, "shop", now)).get("eu-west")?.uptime24h; // 100
 * ```
 */
export function readLocationUptimeSummary(
  sql: postgres.Sql,
  site: string,
  now: Date,
): Promise<Map<string, UptimeSummary>> {
  return summaries(sql, [site], now, true);
}

interface BucketRow {
  site: string;
  bucket: Date;
  checks: number;
  up_checks: number;
  histograms: string | null;
}

/**
 * The hourly or daily buckets from `from` (rounded down to its bucket) to `to` of each site in `sites` (null:
 * every site), by site, oldest first; with p50/p95/p99 when `percentiles` (null otherwise). Buckets without
 * checks are absent.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * declare const first: Date, now: Date;
 * const days = await readUptimeBuckets(sql, ["shop"], first, now, "day");
 * ```
 */
export async function readUptimeBuckets(
  sql: postgres.Sql,
  sites: readonly string[] | null,
  from: Date,
  to: Date,
  width: BucketWidth,
  percentiles = true,
): Promise<Map<string, UptimeBucket[]>> {
  if (sites !== null && sites.length === 0) return new Map();
  const histograms = percentiles
    ? sql`string_agg(r.latency::text, ';') filter (where r.latency is not null)`
    : sql`null::text`;
  const rows = await sql<BucketRow[]>`
    with p as (${picked(sql, sites)})
    select p.name as site, r.bucket, sum(r.checks)::int8 as checks, sum(r.up_checks)::int8 as up_checks,
           ${histograms} as histograms
    from p cross join ${
    rollupsOf(sql, width, width === "hour" ? hoursBack(from, 1) : daysBack(from, 1), to)
  } r
    group by p.name, r.bucket
    order by p.name, r.bucket`;
  const out = new Map<string, UptimeBucket[]>();
  for (const row of rows) {
    const checks = Number(row.checks);
    const upChecks = Number(row.up_checks);
    const merged = percentiles ? mergeHistograms(row.histograms?.split(";") ?? null) : null;
    const list = out.get(row.site) ?? [];
    list.push({
      site: row.site,
      bucket: row.bucket,
      checks,
      upChecks,
      uptimePercent: uptimePercent(checks, upChecks),
      p50Ms: merged && histogramPercentile(merged, 0.5),
      p95Ms: merged && histogramPercentile(merged, 0.95),
      p99Ms: merged && histogramPercentile(merged, 0.99),
      ...(merged === null ? {} : { histogram: merged }),
    });
    out.set(row.site, list);
  }
  return out;
}

/**
 * Uptime of one site over the last `count` hours or days (whole buckets, the current one included), or null
 * when it has no checks then.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * declare const now: Date;
 * await readUptimePeriod(sql, "shop", now, 30, "day"); // 99.953
 * ```
 */
export async function readUptimePeriod(
  sql: postgres.Sql,
  site: string,
  now: Date,
  count: number,
  width: BucketWidth,
): Promise<number | null> {
  const from = width === "hour" ? hoursBack(now, count) : daysBack(now, count);
  const [row] = await sql<{ checks: number; up_checks: number }[]>`
    with p as (select id from sites where name = ${site})
    select coalesce(sum(r.checks), 0)::int8 as checks, coalesce(sum(r.up_checks), 0)::int8 as up_checks
    from p cross join ${rollupsOf(sql, width, from, now)} r`;
  return uptimePercent(Number(row!.checks), Number(row!.up_checks));
}

/**
 * Headline figures from a site's buckets, as {@linkcode readUptimeSummary} computes them in SQL: 24 h from the
 * hourly buckets of the current hour and the 23 before it (their histograms merged for the p95), 7 d and 30 d
 * from the daily buckets of today and the 6 or 29 days before.
 *
 * @example
 * ```ts
 * declare const hours: Map<string, UptimeBucket[]>, days: Map<string, UptimeBucket[]>, now: Date;
 * summarizeBuckets(hours.get("shop") ?? [], days.get("shop") ?? [], now);
 * ```
 */
export function summarizeBuckets(
  hours: readonly UptimeBucket[],
  days: readonly UptimeBucket[],
  now: Date,
): UptimeSummary {
  const from24 = hoursBack(now, 24).getTime();
  const histogram = emptyHistogram();
  let [checks24, up24] = [0, 0];
  for (const hour of hours) {
    if (hour.bucket.getTime() < from24 || hour.bucket > now) continue;
    checks24 += hour.checks;
    up24 += hour.upChecks;
    if (hour.histogram) {
      for (let i = 0; i < histogram.length; i++) histogram[i] = histogram[i]! + hour.histogram[i]!;
    }
  }
  const sum = (count: number) => {
    const from = daysBack(now, count).getTime();
    let [checks, up] = [0, 0];
    for (const day of days) {
      if (day.bucket.getTime() < from || day.bucket > now) continue;
      checks += day.checks;
      up += day.upChecks;
    }
    return uptimePercent(checks, up);
  };
  return {
    uptime24h: uptimePercent(checks24, up24),
    uptime7d: sum(7),
    uptime30d: sum(30),
    p95Ms24h: histogramPercentile(histogram, 0.95),
  };
}
