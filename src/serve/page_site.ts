/**
 * A site page: its state per location, response-time percentiles over time (24 h by hour, 30 d by day),
 * uptime, incidents with duration and cause, recent failed checks with their errors, certificate expiry.
 *
 * @module
 */
import { percentileChart, slots } from "./charts.ts";
import { errorText, formatDurationHuman, formatMs, formatPercent } from "./format.ts";
import { type Html, html } from "./html.ts";
import { page, type PageContext, stateLabel, time } from "./layout.ts";
import { siteApiPath, stateBadgePath, uptimeBadgePath } from "./links.ts";
import { REFRESH_SECONDS } from "./page_sites.ts";
import type { SiteView } from "./views.ts";

/** Renders a site page. */
export function sitePage(context: PageContext, view: SiteView): string {
  const { site } = view;
  const body = html`
    <p><a href="/">← all sites</a></p>
    <h2 id="site-name"><bdi>${site.name}</bdi></h2>
    <p class="url">${/^https?:\/\//i.test(site.url)
      ? html`<a href="${site.url}" rel="nofollow noreferrer">${site.url}</a>`
      : site.url}</p>
    <p>${stateLabel(site.state)} since ${time(site.since)} (${formatDurationHuman(
      view.now.getTime() - site.since.getTime(),
    )})${site.openIncident === null ? "" : html`
      · <span class="incident-note">open incident (${site.openIncident.worstState}) since ${time(
        site.openIncident.startedAt,
      )}</span>
    `}</p>
    <table class="figures">
      <tr>
        <th>Uptime 24 h</th>
        <th>7 d</th>
        <th>30 d</th>
        <th>p95 24 h</th>
        <th>Certificate</th>
      </tr>
      <tr>
        <td>${formatPercent(view.uptime.uptime24h)}</td>
        <td>${formatPercent(view.uptime.uptime7d)}</td>
        <td>${formatPercent(view.uptime.uptime30d)}</td>
        <td>${formatMs(view.uptime.p95Ms24h)}</td>
        <td>${certificate(view)}</td>
      </tr>
    </table>
    <h2>Locations</h2>
    ${locations(view)}
    <h2>Response time</h2>
    <p
      class="legend"><span class="p50">━ p50</span><span class="p95">━ p95 (points)</span><span class="p99">━ p99</span> of the checks that were up</p>
    <h3 class="muted">Last 24 hours, by hour</h3>
    ${percentileChart(
      slots(view.hourly, view.firstHour, 24, 3_600_000),
      view.firstHour,
      3_600_000,
      "response time, last 24 hours by hour",
    )}
    <h3 class="muted">Last 30 days, by day</h3>
    ${percentileChart(
      slots(view.daily, view.firstDay, 30, 86_400_000),
      view.firstDay,
      86_400_000,
      "response time, last 30 days by day",
    )}
    <h2>Incidents</h2>
    ${incidents(view)}
    <h2>Recent failed checks</h2>
    ${failures(view)}
    <footer>Updated ${time(
      view.now,
    )} · reloads every ${REFRESH_SECONDS} s · <a href="${siteApiPath(
      site.name,
    )}">JSON</a> · badges: <a href="${stateBadgePath(
      site.name,
    )}">state</a>, <a href="${uptimeBadgePath(site.name, "30d")}">uptime 30 d</a></footer>
  `;
  return page(context, { heading: site.name, refreshSeconds: REFRESH_SECONDS, body });
}

function certificate(view: SiteView): Html | string {
  const expiries = view.locations.flatMap((l) => l.certExpiresAt === null ? [] : [l.certExpiresAt.getTime()]);
  if (expiries.length === 0) return "–";
  const earliest = new Date(Math.min(...expiries));
  const left = earliest.getTime() - view.now.getTime();
  return html`expires ${time(earliest)} (${left > 0 ? `in ${formatDurationHuman(left)}` : "expired"})`;
}

function locations(view: SiteView): Html {
  if (view.locations.length === 0) return html`<p class="muted">No location has reported.</p>`;
  const rows = view.locations.map((l) => {
    const state = l.stale ? "stale" : l.up ? "up" : "down";
    const error = l.errorKind === null ? "" : html`<code>${errorText(l.errorKind, l.errorMessage)}</code>`;
    const uptime = view.locationUptime.get(l.location);
    return html`
      <tr class="location" data-state="${state}">
        <td>${l.location}</td>
        <td>${stateLabel(state)}</td>
        <td>${time(l.since)}</td>
        <td>${time(l.checkedAt)}</td>
        <td class="num">${l.consecutiveFailures}</td>
        <td class="num">${l.status ?? "–"}</td>
        <td class="num">${formatMs(l.durationMs)}</td>
        <td class="num">${formatPercent(uptime?.uptime24h ?? null)}</td>
        <td class="num">${formatPercent(uptime?.uptime30d ?? null)}</td>
        <td>${error}</td>
      </tr>
    `;
  });
  return html`
    <table class="locations">
      <thead>
        <tr>
          <th>Location</th>
          <th>State</th>
          <th>Since</th>
          <th>Last check</th>
          <th class="num">Failures in a row</th>
          <th class="num">Status</th>
          <th class="num">Time</th>
          <th class="num">Uptime 24 h</th>
          <th class="num">30 d</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>${rows}</tbody>
    </table>
  `;
}

function incidents(view: SiteView): Html {
  if (view.incidents.length === 0) return html`<p class="muted">No incidents recorded.</p>`;
  const rows = view.incidents.map((i) => {
    const end = i.endedAt ?? view.now;
    const cause = i.errorKind === null ? "–" : html`<code>${errorText(i.errorKind, i.errorMessage)}</code>`;
    return html`
      <tr class="incident-row">
        <td>${time(i.startedAt)}</td>
        <td>${i.endedAt === null ? html`<strong>ongoing</strong>` : time(i.endedAt)}</td>
        <td>${formatDurationHuman(end.getTime() - i.startedAt.getTime())}</td>
        <td>${stateLabel(i.worstState)}</td>
        <td>${i.locations.join(", ")}</td>
        <td>${cause}</td>
      </tr>
    `;
  });
  return html`
    <table class="incidents">
      <thead>
        <tr>
          <th>Started</th>
          <th>Ended</th>
          <th>Duration</th>
          <th>Worst</th>
          <th>Locations</th>
          <th>Cause</th>
        </tr>
      </thead>
      <tbody>${rows}</tbody>
    </table>
  `;
}

function failures(view: SiteView): Html {
  if (view.failures.length === 0) return html`<p class="muted">No failed check in the last 7 days.</p>`;
  const rows = view.failures.map((f) =>
    html`
      <tr class="failure">
        <td>${time(f.startedAt)}</td>
        <td>${f.location}</td>
        <td class="num">${f.status ?? "–"}</td>
        <td class="num">${formatMs(f.durationMs)}</td>
        <td><code>${errorText(f.errorKind ?? "", f.errorMessage)}</code></td>
      </tr>
    `
  );
  return html`
    <table class="failures">
      <thead>
        <tr>
          <th>When</th>
          <th>Location</th>
          <th class="num">Status</th>
          <th class="num">Time</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>${rows}</tbody>
    </table>
  `;
}
