/**
 * "How available and how fast was each site?": uptime over the last 24 hours, 7 and 30 days with the p95 of
 * the last 24 hours, and per-bucket series (hours, days) for charts, all from `site_uptime`, which answers from
 * raw checks or rollups so figures do not jump when raw data expires.
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

/** A site's headline figures. */
export interface UptimeSummary {
  readonly uptime24h: number | null;
  readonly uptime7d: number | null;
  readonly uptime30d: number | null;
  readonly p95Ms24h: number | null;
}

const NO_DATA: UptimeSummary = { uptime24h: null, uptime7d: null, uptime30d: null, p95Ms24h: null };

interface Row {
  site: string;
  bucket: Date | null;
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
  const day = 86_400_000;
  const [d1, d7, d30] = await Promise.all(
    [day, 7 * day, 30 * day].map((span) => uptimeRows(sql, sites, new Date(now.getTime() - span), now, null)),
  );
  const out = new Map<string, UptimeSummary>();
  const entry = (site: string) => out.get(site) ?? { ...NO_DATA };
  for (const row of d30!) out.set(row.site, { ...entry(row.site), uptime30d: row.uptime_percent });
  for (const row of d7!) out.set(row.site, { ...entry(row.site), uptime7d: row.uptime_percent });
  for (const row of d1!) {
    out.set(row.site, { ...entry(row.site), uptime24h: row.uptime_percent, p95Ms24h: row.p95_ms });
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
): Promise<Map<string, UptimeBucket[]>> {
  const rows = await uptimeRows(sql, sites, from, to, bucket);
  const out = new Map<string, UptimeBucket[]>();
  for (const row of rows) {
    const list = out.get(row.site) ?? [];
    list.push({
      site: row.site,
      bucket: row.bucket!,
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

function uptimeRows(
  sql: postgres.Sql,
  sites: readonly string[] | null,
  from: Date,
  to: Date,
  bucket: string | null,
): Promise<Row[]> {
  // For a few sites (a page), one call per site uses the site's index; for all of them, one call for all.
  if (sites === null) {
    return sql<Row[]>`
      select site, bucket, checks::int4 as checks, up_checks::int4 as up_checks,
             uptime_percent::float8 as uptime_percent, p50_ms::float8 as p50_ms, p95_ms::float8 as p95_ms,
             p99_ms::float8 as p99_ms
      from site_uptime(null, ${from}, ${to}, ${bucket}::interval)`;
  }
  if (sites.length === 0) return Promise.resolve([]);
  return sql<Row[]>`
    select u.site, u.bucket, u.checks::int4 as checks, u.up_checks::int4 as up_checks,
           u.uptime_percent::float8 as uptime_percent, u.p50_ms::float8 as p50_ms, u.p95_ms::float8 as p95_ms,
           u.p99_ms::float8 as p99_ms
    from unnest(${textArray(sites)}::text[]) as n(name)
    cross join lateral site_uptime(n.name, ${from}, ${to}, ${bucket}::interval) u`;
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
  const rows = await uptimeRows(sql, [site], from, to, null);
  return rows[0]?.uptime_percent ?? null;
}
