/**
 * "How is this one site doing?": its `site_status` row with its URL and open incident, or null when no such
 * site exists (the read side's 404).
 *
 * @module
 */
import type postgres from "postgres";
import type { SiteRow } from "./read_sites.ts";
import { type SiteStatusRow, toSiteRow } from "./_site_row.ts";

interface Row extends SiteStatusRow {
  now: Date;
}

/**
 * Reads one site by its exact name, with the database's clock.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const found = await readSite(sql, "shop"); // null when there is no site "shop"
 * ```
 */
export async function readSite(
  sql: postgres.Sql,
  name: string,
): Promise<{ site: SiteRow; now: Date } | null> {
  const [row] = await sql<Row[]>`
    select ss.site as name, ss.url, ss.state, ss.since, ss.locations_up::int4 as locations_up,
           ss.locations_down::int4 as locations_down, ss.locations_stale::int4 as locations_stale,
           ss.open_incident_started_at as incident_started_at, i.worst_state as incident_worst_state, now() as now
    from site_status ss
    left join incidents i on i.site_id = ss.site_id and i.ended_at is null
    where ss.site = ${name}`;
  if (row === undefined) return null;
  return {
    now: row.now,
    site: toSiteRow(row),
  };
}
