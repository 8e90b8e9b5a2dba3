/**
 * `/metrics` of `monitor serve`: per site and location, in the style of blackbox_exporter (success, last
 * duration, last status code, certificate expiry), and the multi-location verdict per site, so Prometheus
 * and Alertmanager can alert on what the database concluded rather than on one location's view.
 *
 * @module
 */
import type { LocationRow } from "../db/read_locations.ts";
import { SITE_STATES, type SiteRow } from "../db/read_sites.ts";

/** Escapes a label value: backslash, double quote and newline (the text format's rules). */
export function labelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly samples: string[];
}

/**
 * Formats the series of every site and location.
 *
 * @example
 * ```ts
 * import type { LocationRow } from "../db/read_locations.ts";
 * import type { SiteRow } from "../db/read_sites.ts";
 * declare const sites: SiteRow[], locations: LocationRow[];
 * formatServeMetrics(sites, locations);
 * // ...monitor_probe_success{site="shop",location="eu-west"} 1...
 * ```
 */
export function formatServeMetrics(sites: readonly SiteRow[], locations: readonly LocationRow[]): string {
  const family = (name: string, help: string): Family => ({ name, help, samples: [] });
  const success = family(
    "monitor_probe_success",
    "Whether the latest check from the location was up (1) or not (0).",
  );
  const duration = family(
    "monitor_probe_duration_seconds",
    "Duration of the latest check from the location.",
  );
  const status = family(
    "monitor_probe_http_status_code",
    "HTTP status of the latest check; 0 when no response.",
  );
  const cert = family(
    "monitor_probe_ssl_earliest_cert_expiry",
    "When the site's certificate expires (Unix seconds), as last measured from the location.",
  );
  const stale = family(
    "monitor_probe_stale",
    "1 when the location has not reported for 3 of the site's intervals.",
  );
  const checked = family(
    "monitor_probe_last_check_timestamp_seconds",
    "When the latest check from the location started (Unix seconds).",
  );
  const failures = family("monitor_probe_consecutive_failures", "Failed checks in a row from the location.");
  for (const l of locations) {
    const labels = `{site="${labelValue(l.site)}",location="${labelValue(l.location)}"}`;
    success.samples.push(`${labels} ${l.up ? 1 : 0}`);
    if (l.durationMs !== null) duration.samples.push(`${labels} ${l.durationMs / 1000}`);
    status.samples.push(`${labels} ${l.status ?? 0}`);
    if (l.certExpiresAt !== null) cert.samples.push(`${labels} ${l.certExpiresAt.getTime() / 1000}`);
    stale.samples.push(`${labels} ${l.stale ? 1 : 0}`);
    checked.samples.push(`${labels} ${l.checkedAt.getTime() / 1000}`);
    failures.samples.push(`${labels} ${l.consecutiveFailures}`);
  }
  const up = family(
    "monitor_site_up",
    "1 when every fresh location of the site sees it up (state up), else 0.",
  );
  const state = family(
    "monitor_site_state",
    "The site's state: 1 for the current one of up, degraded, down, stale.",
  );
  const locs = family("monitor_site_locations", "Locations of the site by what they see: up, down or stale.");
  const incident = family("monitor_site_incident_open", "1 while the site has an open incident.");
  for (const s of sites) {
    const site = `site="${labelValue(s.name)}"`;
    up.samples.push(`{${site}} ${s.state === "up" ? 1 : 0}`);
    for (const name of SITE_STATES) {
      state.samples.push(`{${site},state="${name}"} ${s.state === name ? 1 : 0}`);
    }
    locs.samples.push(`{${site},state="up"} ${s.locationsUp}`);
    locs.samples.push(`{${site},state="down"} ${s.locationsDown}`);
    locs.samples.push(`{${site},state="stale"} ${s.locationsStale}`);
    incident.samples.push(`{${site}} ${s.openIncident === null ? 0 : 1}`);
  }
  return [success, duration, status, cert, stale, checked, failures, up, state, locs, incident]
    .map((f) =>
      `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} gauge\n` +
      f.samples.map((s) => `${f.name}${s}\n`).join("")
    ).join("");
}
