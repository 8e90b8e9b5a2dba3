/**
 * The text `monitor status` prints: a table of every site (state, since, uptime 24 h and 30 d, p95 over 24 h,
 * open incident) and one site's detail, in colour on a terminal and plain when piped.
 *
 * @module
 */
import type { LocationRow } from "../db/read_locations.ts";
import { SITE_STATES, type SiteRow } from "../db/read_sites.ts";
import type { UptimeSummary } from "../db/read_uptime.ts";
import {
  BIDI_CONTROLS,
  errorText,
  formatDurationHuman,
  formatMs,
  formatPercent,
  formatUtc,
} from "./format.ts";
import type { SiteView } from "./views.ts";

const COLORS: Record<string, string> = { up: "32", degraded: "33", down: "31", stale: "90" };

/** Paints `text` in the colour of `state` when `color` is on. */
function paint(text: string, state: string, color: boolean): string {
  return color ? `\x1b[${COLORS[state] ?? "0"}m${text}\x1b[0m` : text;
}

/** Lays out rows in columns two spaces apart; `paintCell` colours a cell after padding it. */
function columns(
  rows: readonly string[][],
  paintCell?: (row: number, column: number, text: string) => string,
): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, [...cell].length));
  return rows.map((row, r) =>
    row.map((cell, c) => {
      const padded = c === row.length - 1 ? cell : cell + " ".repeat(widths[c]! - [...cell].length);
      return paintCell ? paintCell(r, c, padded) : padded;
    }).join("  ").trimEnd() + "\n"
  ).join("");
}

function incidentText(site: SiteRow): string {
  return site.openIncident === null
    ? "-"
    : `${site.openIncident.worstState} since ${formatUtc(site.openIncident.startedAt)}`;
}

/**
 * The table of every site and a closing line of counts.
 *
 * @example
 * ```ts
 * import type { SiteRow } from "../db/read_sites.ts";
 * import type { UptimeSummary } from "../db/read_uptime.ts";
 * declare const sites: SiteRow[], uptime: Map<string, UptimeSummary>;
 * statusTable(sites, uptime, false);
 * // "SITE  STATE  SINCE ...\nshop  up     2026-11-30 06:00 UTC ...\n\n1 site: 1 up, 0 degraded, 0 down, 0 stale\n"
 * ```
 */
export function statusTable(
  sites: readonly SiteRow[],
  uptime: ReadonlyMap<string, UptimeSummary>,
  color: boolean,
): string {
  const header = ["SITE", "STATE", "SINCE", "UPTIME 24H", "UPTIME 30D", "P95 24H", "OPEN INCIDENT"];
  const rows = sites.map((site) => {
    const figures = uptime.get(site.name);
    return [
      oneLine(site.name),
      site.state,
      formatUtc(site.since),
      formatPercent(figures?.uptime24h ?? null),
      formatPercent(figures?.uptime30d ?? null),
      formatMs(figures?.p95Ms24h ?? null),
      incidentText(site),
    ];
  });
  const counts = SITE_STATES.map((state) => `${sites.filter((s) => s.state === state).length} ${state}`);
  const summary = `${sites.length} site${sites.length === 1 ? "" : "s"}: ${counts.join(", ")}\n`;
  if (sites.length === 0) return "No sites in the database yet.\n";
  const table = columns([header, ...rows], (r, c, text) => {
    if (r === 0) return color ? `\x1b[1m${text}\x1b[0m` : text;
    return c === 1 ? paint(text, sites[r - 1]!.state, color) : text;
  });
  return `${table}\n${summary}`;
}

function locationState(location: LocationRow): string {
  return location.stale ? "stale" : location.up ? "up" : "down";
}

/** One site's detail: state, figures, each location, incidents and recent failures. */
export function siteDetail(view: SiteView, color: boolean): string {
  const { site, uptime } = view;
  const lines = [
    `${oneLine(site.name)}  ${oneLine(site.url)}`,
    `state:     ${paint(site.state, site.state, color)} since ${formatUtc(site.since)} (${
      formatDurationHuman(view.now.getTime() - site.since.getTime())
    })`,
    `uptime:    24h ${formatPercent(uptime.uptime24h)}, 7d ${formatPercent(uptime.uptime7d)}, 30d ${
      formatPercent(uptime.uptime30d)
    }; p95 24h ${formatMs(uptime.p95Ms24h)}`,
    `incident:  ${incidentText(site)}`,
    "",
  ];
  const locations = view.locations.map((l) => [
    oneLine(l.location),
    locationState(l),
    formatUtc(l.since),
    formatUtc(l.checkedAt),
    String(l.consecutiveFailures),
    l.status === null ? "-" : String(l.status),
    l.errorKind === null ? "-" : oneLine(errorText(l.errorKind, l.errorMessage)),
  ]);
  const locationText = columns(
    [["LOCATION", "STATE", "SINCE", "LAST CHECK", "FAILURES", "STATUS", "ERROR"], ...locations],
    (r, c, text) => r > 0 && c === 1 ? paint(text, locations[r - 1]![1]!, color) : text,
  );
  const incidents = view.incidents.slice(0, 5).map((i) => [
    formatUtc(i.startedAt),
    i.endedAt === null ? "ongoing" : formatUtc(i.endedAt),
    formatDurationHuman((i.endedAt ?? view.now).getTime() - i.startedAt.getTime()),
    i.worstState,
    i.errorKind === null ? "-" : oneLine(errorText(i.errorKind, i.errorMessage)),
  ]);
  const incidentTextBlock = incidents.length === 0
    ? "No incidents recorded.\n"
    : columns([["STARTED", "ENDED", "DURATION", "WORST", "CAUSE"], ...incidents]);
  return lines.join("\n") + "\n" + locationText + "\n" + incidentTextBlock;
}

// What a terminal must not be sent from a stored name or message: control characters, C0 and C1 (U+009B
// alone starts an escape sequence, as ESC [ does), the line and paragraph separators, and the bidi controls.
const UNSAFE_RUNS = new RegExp(`[\\p{Cc}\\u2028\\u2029${BIDI_CONTROLS}]+`, "gu");
// Of those, the ones JSON.stringify leaves as they are (it escapes C0 in strings; a newline outside one is
// the layout).
const UNSAFE_IN_JSON = new RegExp(`[\\x7f-\\x9f\\u2028\\u2029${BIDI_CONTROLS}]`, "g");

/**
 * `text` as one harmless line for a terminal: runs of the characters a terminal must not be sent (control
 * characters, line separators, bidi controls) become one space.
 *
 * @example
 * ```ts
 * oneLine("down:\r\n\x9b2J\u202e"); // "down: 2J "
 * ```
 */
export function oneLine(text: string): string {
  return text.replace(UNSAFE_RUNS, " ");
}

/**
 * JSON text (from JSON.stringify) with the characters {@linkcode oneLine} removes written as `\uXXXX`
 * escapes: the same JSON value, safe to print to a terminal.
 *
 * @example
 * ```ts
 * terminalJson('{"name":"a\x9bb"}'); // '{"name":"a\\u009bb"}'
 * ```
 */
export function terminalJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
