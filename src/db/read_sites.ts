/**
 * "Which sites are there, and how is each doing now?": one page of `site_status` (filtered by name and state,
 * open incidents first) with the site's URL and its open incident, and the count of sites per state. The
 * read side's front page, `/api/sites` and `monitor status` answer from it.
 *
 * @module
 */
import type postgres from "postgres";
import { type SiteStatusRow, toSiteRow } from "./_site_row.ts";

/** A site's state, derived from its locations (DESIGN.md, "Database contract"). */
export type SiteState = "up" | "degraded" | "down" | "stale";

/** Every state, in the order pages list them. */
export const SITE_STATES: readonly SiteState[] = ["up", "degraded", "down", "stale"];

/** The open incident of a site. */
export interface OpenIncident {
  readonly startedAt: Date;
  readonly worstState: string;
}

/** One site as the lists show it. */
export interface SiteRow {
  readonly name: string;
  readonly url: string;
  readonly state: SiteState;
  readonly since: Date;
  readonly locationsUp: number;
  readonly locationsDown: number;
  readonly locationsStale: number;
  readonly openIncident: OpenIncident | null;
}

/** Which sites to list. */
export interface SiteFilter {
  /** Part of the name, any case; empty or absent lists every site. */
  readonly query?: string;
  readonly state?: SiteState;
  readonly offset?: number;
  /** Default: every site. */
  readonly limit?: number;
}

/** A page of sites. */
export interface SitePage {
  /** The database's clock when it answered. */
  readonly now: Date;
  /** Sites that match the filter, on every page. */
  readonly total: number;
  /** Sites per state, of every site (not only those the filter matches). */
  readonly counts: Readonly<Record<SiteState, number>>;
  readonly sites: readonly SiteRow[];
}

interface Row extends SiteStatusRow {
  total: number;
}

/**
 * Reads one page of sites: open incidents first, then down, degraded, stale and up, then by name.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const page = await readSites(sql, { query: "shop", state: "down", offset: 0, limit: 50 });
 * ```
 */
export async function readSites(sql: postgres.Sql, filter: SiteFilter = {}): Promise<SitePage> {
  const query = filter.query ?? "";
  const state = filter.state ?? null;
  const [rows, counts] = await Promise.all([
    sql<Row[]>`
      select ss.site as name, ss.url, ss.state, ss.since, ss.locations_up::int4 as locations_up,
             ss.locations_down::int4 as locations_down, ss.locations_stale::int4 as locations_stale,
             ss.open_incident_started_at as incident_started_at, i.worst_state as incident_worst_state,
             count(*) over ()::int4 as total
      from site_status ss
      left join incidents i on i.site_id = ss.site_id and i.ended_at is null
      where (${query} = '' or strpos(lower(ss.site), lower(${query})) > 0)
        and (${state}::text is null or ss.state = ${state}::text)
      order by ss.open_incident_started_at is null, array_position(array['down', 'degraded', 'stale', 'up'], ss.state),
               ss.site
      offset ${filter.offset ?? 0}
      limit ${filter.limit ?? null}`,
    sql<{ state: SiteState; count: number; now: Date }[]>`
      select state, count(*)::int4 as count, now() as now from site_status group by state
      union all select null, 0, now()`,
  ]);
  const byState: Record<SiteState, number> = { up: 0, degraded: 0, down: 0, stale: 0 };
  for (const row of counts) if (row.state !== null) byState[row.state] = row.count;
  return {
    now: counts[0]!.now,
    total: rows[0]?.total ?? (filter.offset ? await countMatching(sql, query, state) : 0),
    counts: byState,
    sites: rows.map(toSiteRow),
  };
}

// A page past the end has no rows to carry the total.
async function countMatching(sql: postgres.Sql, query: string, state: SiteState | null): Promise<number> {
  const [row] = await sql<{ total: number }[]>`
    select count(*)::int4 as total from site_status ss
    where (${query} = '' or strpos(lower(ss.site), lower(${query})) > 0)
      and (${state}::text is null or ss.state = ${state}::text)`;
  return row!.total;
}
