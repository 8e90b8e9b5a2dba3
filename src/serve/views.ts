/**
 * What each page and its JSON twin show, read from the database in one place: the HTML renders a view, the
 * API serializes the same view, so the two never disagree.
 *
 * @module
 */
import type postgres from "postgres";
import { type FailedCheck, readRecentFailures } from "../db/read_failures.ts";
import { type IncidentRow, readIncidents } from "../db/read_incidents.ts";
import { type LocationRow, readLocations } from "../db/read_locations.ts";
import { readSite } from "../db/read_site.ts";
import { readSites, type SiteRow } from "../db/read_sites.ts";
import {
  readLocationUptimeSummary,
  readUptimeBuckets,
  readUptimeSummary,
  summarizeBuckets,
  type UptimeBucket,
  type UptimeSummary,
} from "../db/read_uptime.ts";
import type { SitesView } from "./page_sites.ts";
import { PastDaysCache } from "./past_days.ts";
import type { SiteQuery } from "./query.ts";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Start of the UTC day `days - 1` days before `now`'s, so that `days` days end with today. */
export function firstDayOf(now: Date, days: number): Date {
  const midnight = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  return new Date(midnight - (days - 1) * DAY_MS);
}

/** Start of the hour `hours - 1` hours before `now`'s, so that `hours` hours end with the current one. */
export function firstHourOf(now: Date, hours: number): Date {
  return new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS);
}

/**
 * Reads the front page's data: one page of sites, then their 90 days (past ones from `pastDays`) and 24 hours,
 * from which their uptime figures follow; only for the sites on the page, so the cost follows the page size,
 * not the number of sites.
 */
export async function loadSitesView(
  sql: postgres.Sql,
  query: SiteQuery,
  pastDays: PastDaysCache = new PastDaysCache(),
): Promise<SitesView> {
  const page = await readSites(sql, {
    query: query.q,
    ...(query.state === null ? {} : { state: query.state }),
    offset: (query.page - 1) * query.perPage,
    limit: query.perPage,
  });
  const names = page.sites.map((site) => site.name);
  const firstDay = firstDayOf(page.now, 90);
  const firstHour = firstHourOf(page.now, 24);
  const [days, hours] = await Promise.all([
    pastDays.read(sql, names, page.now),
    readUptimeBuckets(sql, names, firstHour, page.now, "hour"),
  ]);
  const uptime = new Map(
    names.map((name) => [name, summarizeBuckets(hours.get(name) ?? [], days.get(name) ?? [], page.now)]),
  );
  return { page, query, uptime, days, hours, firstDay, firstHour };
}

/** Everything a site page shows. */
export interface SiteView {
  readonly now: Date;
  readonly site: SiteRow;
  readonly uptime: UptimeSummary;
  readonly locations: readonly LocationRow[];
  /** Uptime per location, keyed by location. */
  readonly locationUptime: ReadonlyMap<string, UptimeSummary>;
  /** The last 24 hours by hour, and the last 30 days by day (buckets without checks absent). */
  readonly hourly: readonly UptimeBucket[];
  readonly daily: readonly UptimeBucket[];
  readonly firstHour: Date;
  readonly firstDay: Date;
  readonly incidents: readonly IncidentRow[];
  readonly failures: readonly FailedCheck[];
}

/** Reads a site page's data; null when there is no such site. */
export async function loadSiteView(sql: postgres.Sql, name: string): Promise<SiteView | null> {
  const found = await readSite(sql, name);
  if (found === null) return null;
  const { now, site } = found;
  const firstHour = firstHourOf(now, 24);
  const firstDay = firstDayOf(now, 30);
  const [uptime, locations, locationUptime, hourly, daily, incidents, failures] = await Promise.all([
    readUptimeSummary(sql, [name], now),
    readLocations(sql, name),
    readLocationUptimeSummary(sql, name, now),
    readUptimeBuckets(sql, [name], firstHour, now, "hour"),
    readUptimeBuckets(sql, [name], firstDay, now, "day"),
    readIncidents(sql, { site: name, limit: 50 }),
    readRecentFailures(sql, name, 20),
  ]);
  return {
    now,
    site,
    uptime: uptime.get(name) ?? { uptime24h: null, uptime7d: null, uptime30d: null, p95Ms24h: null },
    locations,
    locationUptime,
    hourly: hourly.get(name) ?? [],
    daily: daily.get(name) ?? [],
    firstHour,
    firstDay,
    incidents,
    failures,
  };
}
