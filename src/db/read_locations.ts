/**
 * "What does each location see of each site now?": `location_status`, one row per (site, location), for a
 * site page, `/api/sites/<name>` and the per-location series of `/metrics`.
 *
 * @module
 */
import type postgres from "postgres";

/** The latest state of one site from one location. */
export interface LocationRow {
  readonly site: string;
  readonly location: string;
  readonly up: boolean;
  /** No check from this location for 3 of the site's intervals (judged by the database's clock). */
  readonly stale: boolean;
  readonly since: Date;
  readonly checkedAt: Date;
  readonly consecutiveFailures: number;
  /** HTTP status of the latest check; null when no response. */
  readonly status: number | null;
  readonly durationMs: number | null;
  readonly errorKind: string | null;
  readonly errorMessage: string | null;
  /**
   * When the site's certificate expires, as the location's latest check saw it (from that raw check, found by its
   * primary key); null for http, a check that failed before TLS, or a check whose partition has expired.
   */
  readonly certExpiresAt: Date | null;
}

interface Row {
  site: string;
  location: string;
  up: boolean;
  stale: boolean;
  since: Date;
  checked_at: Date;
  consecutive_failures: number;
  status: number | null;
  duration_ms: number | null;
  error_kind: string | null;
  error_message: string | null;
  cert_expires_at: Date | null;
}

/**
 * Reads the locations of `site` (null: of every site), ordered by site and location.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const locations = await readLocations(sql, "shop");
 * ```
 */
export async function readLocations(sql: postgres.Sql, site: string | null): Promise<LocationRow[]> {
  const rows = await sql<Row[]>`
    select ls.site, ls.location, ls.up, ls.stale, ls.since, ls.checked_at,
           ls.consecutive_failures::int4 as consecutive_failures, ls.status::int4 as status,
           ls.duration_ms::float8 as duration_ms, ls.error_kind::text as error_kind, ls.error_message,
           c.cert_expires_at
    from location_status ls
    left join checks c on c.site_id = ls.site_id and c.started_at = ls.checked_at and c.id = ls.check_id
    where ${site}::text is null or ls.site = ${site}::text
    order by ls.site, ls.location`;
  return rows.map((row) => ({
    site: row.site,
    location: row.location,
    up: row.up,
    stale: row.stale,
    since: row.since,
    checkedAt: row.checked_at,
    consecutiveFailures: row.consecutive_failures,
    status: row.status,
    durationMs: row.duration_ms,
    errorKind: row.error_kind,
    errorMessage: row.error_message,
    certExpiresAt: row.cert_expires_at,
  }));
}
