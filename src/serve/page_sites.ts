/**
 * The front page: every site (one page of them) with its state and the locations behind it, uptime over
 * 24 h / 7 d / 30 d, 90 daily bars, a 24-hour response-time sparkline; open incidents first; a filter by name
 * and state (a plain GET form, so it needs no script and survives the self-refresh).
 *
 * @module
 */
import { SITE_STATES, type SitePage } from "../db/read_sites.ts";
import type { UptimeBucket, UptimeSummary } from "../db/read_uptime.ts";
import { dailyBars, slots, sparkline } from "./charts.ts";
import { formatPercent } from "./format.ts";
import { type Html, html } from "./html.ts";
import { page, type PageContext, stateLabel, time } from "./layout.ts";
import { sitePath } from "./links.ts";
import type { SiteQuery } from "./query.ts";
import { sitesQueryString } from "./query.ts";

/** Everything the front page shows. */
export interface SitesView {
  readonly page: SitePage;
  readonly query: SiteQuery;
  readonly uptime: ReadonlyMap<string, UptimeSummary>;
  readonly days: ReadonlyMap<string, readonly UptimeBucket[]>;
  readonly hours: ReadonlyMap<string, readonly UptimeBucket[]>;
  /** First of the 90 days (UTC midnight) and first of the 24 hours. */
  readonly firstDay: Date;
  readonly firstHour: Date;
}

/** How often the front page reloads itself. */
export const REFRESH_SECONDS = 30;

/** Renders the front page. */
export function sitesPage(context: PageContext, view: SitesView): string {
  const { page: data, query } = view;
  const counts = SITE_STATES.map((state) => `${data.counts[state]} ${state}`).join(", ");
  const allSites = SITE_STATES.reduce((sum, state) => sum + data.counts[state], 0);
  const rows = data.sites.map((site) => {
    const figures = view.uptime.get(site.name);
    const bars = slots(view.days.get(site.name) ?? [], view.firstDay, 90, 86_400_000);
    const hours = slots(view.hours.get(site.name) ?? [], view.firstHour, 24, 3_600_000);
    const locations = site.locationsUp + site.locationsDown + site.locationsStale;
    const incident = site.openIncident === null
      ? ""
      : html`<div class="incident-note">incident (${site.openIncident.worstState}) since ${
        time(site.openIncident.startedAt)
      }</div>`;
    return html`
      <tr class="site${site.openIncident ? " incident" : ""}" data-state="${site.state}">
        <td><a href="${sitePath(site.name)}"><bdi>${site.name}</bdi></a><div class="url">${site
          .url}</div></td>
        <td>${stateLabel(site.state)}<div class="locs">${locationSummary(
          site,
        )} of ${locations}</div><div class="since">since ${time(site.since)}</div>${incident}</td>
        <td class="num">${formatPercent(figures?.uptime24h ?? null)}</td>
        <td class="num">${formatPercent(figures?.uptime7d ?? null)}</td>
        <td class="num">${formatPercent(figures?.uptime30d ?? null)}</td>
        <td>${dailyBars(bars, view.firstDay)}</td>
        <td>${sparkline(hours.map((h) => h?.p50Ms ?? null), "p50 per hour")}</td>
      </tr>
    `;
  });
  const stateOptions = [html`<option value="">every state</option>`].concat(
    SITE_STATES.map((state) =>
      html`
        <option value="${state}" ${query.state === state ? " selected" : ""}>${state} (${data
          .counts[state]})</option>
      `
    ),
  );
  const body = html`
    <p class="muted">${allSites} sites: ${counts}</p>
    <form class="filter" method="get"
      action="/"><input type="search" name="q" value="${query
        .q}" placeholder="filter by name" aria-label="filter by name">
    <select name="state" aria-label="state">${stateOptions}</select><button type="submit">Filter</button>${query
            .q !== "" || query.state !== null
      ? html`
        <a href="/">clear</a>
      `
      : ""}</form>
    ${data.sites.length === 0
      ? html`<p class="muted" id="empty">${
        data.total === 0 ? "No site matches." : "No site on this page."
      }</p>`
      : html`
        <table class="sites">
          <thead>
            <tr>
              <th>Site</th>
              <th>State</th>
              <th class="num">24 h</th>
              <th class="num">7 d</th>
              <th class="num">30 d</th>
              <th>Last 90 days</th>
              <th>p50, 24 h</th>
            </tr>
          </thead>
          <tbody>
        ${rows}
          </tbody>
        </table>
      `}
    ${pager(data.total, query)}
    <footer>Updated ${time(
      data.now,
    )} · reloads every ${REFRESH_SECONDS} s · <a href="/api/sites${sitesQueryString(
      query,
      query.page,
    )}">JSON</a> · <a href="/metrics">metrics</a></footer>
  `;
  return page(context, { heading: context.title, refreshSeconds: REFRESH_SECONDS, body });
}

function locationSummary(site: SitePage["sites"][number]): string {
  const parts = [`${site.locationsUp} up`];
  if (site.locationsDown > 0) parts.push(`${site.locationsDown} down`);
  if (site.locationsStale > 0) parts.push(`${site.locationsStale} stale`);
  return parts.join(", ");
}

function pager(total: number, query: SiteQuery): Html {
  const pages = Math.max(1, Math.ceil(total / query.perPage));
  const link = (page: number, text: string) => html`<a href="/${sitesQueryString(query, page)}">${text}</a>`;
  // A page past the last (a bookmark from when there were more sites) leads back to the last one.
  if (query.page > pages) {
    return html`
      <nav class="pages"><span>page ${query.page} of ${pages}</span>${link(pages, "← last page")}</nav>
    `;
  }
  if (pages === 1) return html``;
  const first = (query.page - 1) * query.perPage + 1;
  const last = Math.min(total, query.page * query.perPage);
  return html`
    <nav
      class="pages"><span>${first}–${last} of ${total}</span>${query.page > 1
        ? link(query.page - 1, "← previous")
        : ""}<span>page ${query.page} of ${pages}</span>${query.page < pages
        ? link(query.page + 1, "next →")
        : ""}</nav>
  `;
}
