/**
 * The JSON API: the same views the pages render, with times as RFC 3339 UTC, percentages as numbers (null
 * without data), durations in milliseconds. The README shows an example of each.
 *
 * @module
 */
import type { IncidentRow } from "../db/read_incidents.ts";
import type { SiteRow } from "../db/read_sites.ts";
import type { UptimeBucket, UptimeSummary } from "../db/read_uptime.ts";
import type { SitesView } from "./page_sites.ts";
import type { SiteView } from "./views.ts";

/** The JSON of a site in a list. */
export function siteJson(site: SiteRow, uptime: UptimeSummary | undefined) {
  return {
    name: site.name,
    url: site.url,
    state: site.state,
    since: site.since.toISOString(),
    locations: { up: site.locationsUp, down: site.locationsDown, stale: site.locationsStale },
    uptime: {
      "24h": uptime?.uptime24h ?? null,
      "7d": uptime?.uptime7d ?? null,
      "30d": uptime?.uptime30d ?? null,
    },
    p95_ms_24h: uptime?.p95Ms24h ?? null,
    open_incident: site.openIncident === null
      ? null
      : { started_at: site.openIncident.startedAt.toISOString(), worst_state: site.openIncident.worstState },
  };
}

function bucketJson(bucket: UptimeBucket) {
  return {
    bucket: bucket.bucket.toISOString(),
    checks: bucket.checks,
    up_checks: bucket.upChecks,
    uptime_percent: bucket.uptimePercent,
    p50_ms: bucket.p50Ms,
    p95_ms: bucket.p95Ms,
    p99_ms: bucket.p99Ms,
  };
}

/** The JSON of an incident, with its duration so far in seconds. */
export function incidentJson(incident: IncidentRow, now: Date) {
  return {
    site: incident.site,
    started_at: incident.startedAt.toISOString(),
    ended_at: incident.endedAt?.toISOString() ?? null,
    duration_seconds: Math.round(((incident.endedAt ?? now).getTime() - incident.startedAt.getTime()) / 1000),
    worst_state: incident.worstState,
    locations: incident.locations,
    error_kind: incident.errorKind,
    error_message: incident.errorMessage,
  };
}

/** `/api/sites`. */
export function sitesJson(view: SitesView) {
  return {
    generated_at: view.page.now.toISOString(),
    total: view.page.total,
    page: view.query.page,
    per_page: view.query.perPage,
    counts: view.page.counts,
    sites: view.page.sites.map((site) => siteJson(site, view.uptime.get(site.name))),
  };
}

/** `/api/sites/<name>`. */
export function siteDetailJson(view: SiteView) {
  return {
    generated_at: view.now.toISOString(),
    ...siteJson(view.site, view.uptime),
    location_status: view.locations.map((l) => ({
      location: l.location,
      state: l.stale ? "stale" : l.up ? "up" : "down",
      up: l.up,
      stale: l.stale,
      since: l.since.toISOString(),
      checked_at: l.checkedAt.toISOString(),
      consecutive_failures: l.consecutiveFailures,
      status: l.status,
      duration_ms: l.durationMs,
      error_kind: l.errorKind,
      error_message: l.errorMessage,
      cert_expires_at: l.certExpiresAt?.toISOString() ?? null,
      uptime: {
        "24h": view.locationUptime.get(l.location)?.uptime24h ?? null,
        "7d": view.locationUptime.get(l.location)?.uptime7d ?? null,
        "30d": view.locationUptime.get(l.location)?.uptime30d ?? null,
      },
      p95_ms_24h: view.locationUptime.get(l.location)?.p95Ms24h ?? null,
    })),
    series: { hourly: view.hourly.map(bucketJson), daily: view.daily.map(bucketJson) },
    incidents: view.incidents.map((i) => incidentJson(i, view.now)),
    recent_failures: view.failures.map((f) => ({
      started_at: f.startedAt.toISOString(),
      location: f.location,
      agent: f.agent,
      status: f.status,
      duration_ms: f.durationMs,
      error_kind: f.errorKind,
      error_message: f.errorMessage,
    })),
  };
}
