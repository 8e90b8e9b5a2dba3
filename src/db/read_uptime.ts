/**
 * "How available and how fast was each site?": uptime over the last 24 hours, 7 and 30 days with the p95 of
 * the last 24 hours, per-bucket series (hours, days) for charts, and the same per location, all from
 * `site_uptime` and `location_uptime`, which answer from raw checks or rollups so figures do not jump when raw
 * data expires.
 *
 * @module
 */
import type postgres from "postgres";
import { textArray } from "./_arrays.ts";

/** One bucket of `site_uptime`. */
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
}

/** A site's (or a location's) headline figures. */
export interface UptimeSummary {
  readonly uptime24h: number | null;
  readonly uptime7d: number | null;
  readonly uptime30d: number | null;
  readonly p95Ms24h: number | null;
}

const NO_DATA: UptimeSummary = { uptime24h: null, uptime7d: null, uptime30d: null, p95Ms24h: null };
const DAY_MS = 86_400_000;

interface Row {
  site: string;
  location?: string;
  bucket: Date;
  checks: number;
  up_checks: number;
  uptime_percent: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
}

/**
 * Uptime over the 24 hours, 7 days and 30 days before `now`, and the p95 of the last 24 hours, of each site
 * in `sites` (null: every site). A site without checks in a period has null there.
 *
 * @example
 * ```ts
 * const figures = await readUptimeSummary(sql, ["shop", "api"], page.now);
 * figures.get("shop")?.uptime30d; // 99.953
 * ```
 */
export async function readUptimeSummary(
  sql: postgres.Sql,
  sites: readonly string[] | null,
  now: Date,
): Promise<Map<string, UptimeSummary>> {
  const ago = (days: number) => new Date(now.getTime() - days * DAY_MS);
  const [d1, d7, d30] = await Promise.all([
    siteRows(sql, sites, ago(1), now, null, true),
    siteRows(sql, sites, ago(7), now, null, false),
    siteRows(sql, sites, ago(30), now, null, false),
  ]);
  return summarize(d1, d7, d30, (row) => row.site);
}

/**
 * The same figures per location of one site, keyed by location.
 *
 * @example
 * ```ts
 * (await readLocationUptimeSummary(sql, "shop", now)).get("eu-west")?.uptime24h; // 100
 * ```
 */
export async function readLocationUptimeSummary(
  sql: postgres.Sql,
  site: string,
  now: Date,
): Promise<Map<string, UptimeSummary>> {
  const ago = (days: number) => new Date(now.getTime() - days * DAY_MS);
  const rows = (from: Date) =>
    sql<Row[]>`
      select site, location, bucket, checks::int4 as checks, up_checks::int4 as up_checks,
             uptime_percent::float8 as uptime_percent, null::float8 as p50_ms, p95_ms, null::float8 as p99_ms
      from location_uptime(${site}, ${from}, ${now}, null)`;
  const [d1, d7, d30] = await Promise.all([rows(ago(1)), rows(ago(7)), rows(ago(30))]);
  return summarize(d1, d7, d30, (row) => row.location!);
}

function summarize(
  d1: readonly Row[],
  d7: readonly Row[],
  d30: readonly Row[],
  key: (row: Row) => string,
): Map<string, UptimeSummary> {
  const out = new Map<string, UptimeSummary>();
  const entry = (row: Row) => out.get(key(row)) ?? { ...NO_DATA };
  for (const row of d30) out.set(key(row), { ...entry(row), uptime30d: row.uptime_percent });
  for (const row of d7) out.set(key(row), { ...entry(row), uptime7d: row.uptime_percent });
  for (const row of d1) {
    out.set(key(row), { ...entry(row), uptime24h: row.uptime_percent, p95Ms24h: row.p95_ms });
  }
  return out;
}

/**
 * The buckets of width `bucket` (a PostgreSQL interval such as `'1 hour'` or `'1 day'`) in
 * [`from`, `to`) of each site in `sites` (null: every site), by site, oldest first. Buckets without checks
 * are absent.
 *
 * @example
 * ```ts
 * const days = await readUptimeBuckets(sql, ["shop"], first, now, "1 day");
 * ```
 */
export async function readUptimeBuckets(
  sql: postgres.Sql,
  sites: readonly string[] | null,
  from: Date,
  to: Date,
  bucket: string,
  percentiles = true,
): Promise<Map<string, UptimeBucket[]>> {
  const rows = await siteRows(sql, sites, from, to, bucket, percentiles);
  const out = new Map<string, UptimeBucket[]>();
  for (const row of rows) {
    const list = out.get(row.site) ?? [];
    list.push({
      site: row.site,
      bucket: row.bucket,
      checks: row.checks,
      upChecks: row.up_checks,
      uptimePercent: row.uptime_percent,
      p50Ms: row.p50_ms,
      p95Ms: row.p95_ms,
      p99Ms: row.p99_ms,
    });
    out.set(row.site, list);
  }
  for (const list of out.values()) list.sort((a, b) => a.bucket.getTime() - b.bucket.getTime());
  return out;
}

/**
 * Uptime of one site over [`from`, `to`), or null when it has no checks then.
 *
 * @example
 * ```ts
 * await readUptimeOver(sql, "shop", new Date(Date.now() - 30 * 86_400_000), new Date()); // 99.953
 * ```
 */
export async function readUptimeOver(
  sql: postgres.Sql,
  site: string,
  from: Date,
  to: Date,
): Promise<number | null> {
  const rows = await siteRows(sql, [site], from, to, null, false);
  return rows[0]?.uptime_percent ?? null;
}

// site_uptime merges latency histograms only when a percentile is selected, so counts-only reads leave them out.
function siteRows(
  sql: postgres.Sql,
  sites: readonly string[] | null,
  from: Date,
  to: Date,
  bucket: string | null,
  percentiles: boolean,
): Promise<Row[]> {
  if (sites !== null && sites.length === 0) return Promise.resolve([]);
  const names = sites === null ? null : textArray(sites);
  if (percentiles) {
    return sql<Row[]>`
      select u.site, u.bucket, u.checks::int4 as checks, u.up_checks::int4 as up_checks,
             u.uptime_percent::float8 as uptime_percent, u.p50_ms, u.p95_ms, u.p99_ms
      from ${
      sites === null ? sql`site_uptime(null, ${from}, ${to}, ${bucket}::interval) u` : sql`
        unnest(${names}::text[]) as n(name)
        cross join lateral site_uptime(n.name, ${from}, ${to}, ${bucket}::interval) u`
    }`;
  }
  return sql<Row[]>`
    select u.site, u.bucket, u.checks::int4 as checks, u.up_checks::int4 as up_checks,
           u.uptime_percent::float8 as uptime_percent, null::float8 as p50_ms, null::float8 as p95_ms,
           null::float8 as p99_ms
    from ${
    sites === null ? sql`site_uptime(null, ${from}, ${to}, ${bucket}::interval) u` : sql`
      unnest(${names}::text[]) as n(name)
      cross join lateral site_uptime(n.name, ${from}, ${to}, ${bucket}::interval) u`
  }`;
}
