/**
 * The columns both site reads select from `site_status` (with the open incident), and their mapping to a
 * {@linkcode SiteRow}: one place, so the page of sites and the single site cannot drift apart.
 *
 * @module
 */
import type { SiteRow, SiteState } from "./read_sites.ts";

/** A `site_status` row as `readSites` and `readSite` select it. */
export interface SiteStatusRow {
  name: string;
  url: string;
  state: SiteState;
  since: Date;
  locations_up: number;
  locations_down: number;
  locations_stale: number;
  incident_started_at: Date | null;
  incident_worst_state: string | null;
}

/**
 * Maps a selected row to the read side's site.
 *
 * @example
 * ```ts
 * const site = toSiteRow({
 *   name: "shop", url: "https://shop.example/", state: "up", since: new Date(0), locations_up: 2,
 *   locations_down: 0, locations_stale: 0, incident_started_at: null, incident_worst_state: null,
 * }); // site.openIncident === null
 * ```
 */
export function toSiteRow(row: SiteStatusRow): SiteRow {
  return {
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
  };
}
