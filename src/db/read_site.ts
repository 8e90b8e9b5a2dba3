/**
 * "How is this one site doing?": its `site_status` row with its URL and open incident, or null when no such
 * site exists (the read side's 404).
 *
 * @module
 */
import type postgres from "postgres";
import type { SiteRow, SiteState } from "./read_sites.ts";

interface Row {
  name: string;
  url: string;
  state: SiteState;
  since: Date;
  locations_up: number;
  locations_down: number;
  locations_stale: number;
  incident_started_at: Date | null;
  incident_worst_state: string | null;
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
    site: {
      name: row.name,
      url: row.url,
      state: row.state,
      since: row.since,
      locationsUp: row.locations_up,
      locationsDown: row.locations_down,
      locationsStale: row.locations_stale,
      openIncident: row.incident_started_at === null
        ? null
        : { startedAt: row.incident_started_at, worstState: row.incident_worst_state! },
    },
  };
}
