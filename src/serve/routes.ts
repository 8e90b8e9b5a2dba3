/**
 * The HTTP routes of `monitor serve`. Every route only reads. A database that cannot serve (away, refusing
 * connections, too slow, not migrated: ./unavailable.ts) gives 503 (a page, JSON or text that says so) and
 * the next request tries again; an unknown site gives 404; a bad parameter 400.
 *
 * @module
 */
import type postgres from "postgres";
import { readLocations } from "../db/read_locations.ts";
import { readSite } from "../db/read_site.ts";
import { readSites } from "../db/read_sites.ts";
import { readIncidents } from "../db/read_incidents.ts";
import { readUptimePeriod } from "../db/read_uptime.ts";
import { readNow } from "../db/read_now.ts";
import { readMigrated } from "../db/read_ready.ts";
import { describeError } from "../db/retry.ts";
import type { Logger } from "../log.ts";
import { incidentJson, siteDetailJson, sitesJson } from "./api.ts";
import { STYLE_CSS, TIME_JS } from "./assets.ts";
import { badge, stateColor, uptimeColor } from "./badge.ts";
import { formatPercent } from "./format.ts";
import { html } from "./html.ts";
import { page, type PageContext } from "./layout.ts";
import { nameOf } from "./links.ts";
import { formatServeMetrics } from "./metrics_text.ts";
import { SharedRead } from "./shared_read.ts";
import { sitePage } from "./page_site.ts";
import { sitesPage } from "./page_sites.ts";
import { PastDaysCache } from "./past_days.ts";
import { parseSiteQuery, textParameter } from "./query.ts";
import { databaseUnavailable, MIGRATE_ADVICE } from "./unavailable.ts";
import { loadSitesView, loadSiteView } from "./views.ts";

/** What the routes need: a way to run a read with a deadline, and the page settings. */
export interface RouteContext extends PageContext {
  /** Runs `call` on the pool; rejects (with the driver's error or a deadline error) when the database is away. */
  readonly read: <T>(what: string, call: (sql: postgres.Sql) => Promise<T>) => Promise<T>;
  readonly log: Logger;
}

type Kind = "html" | "json" | "text" | "svg";

const TYPES: Record<Kind, string> = {
  html: "text/html; charset=utf-8",
  json: "application/json; charset=utf-8",
  text: "text/plain; charset=utf-8",
  svg: "image/svg+xml; charset=utf-8",
};

/**
 * What a page or badge may load: its own stylesheet and script, nothing inline, no other origin, and no
 * framing. Every name and message is escaped already; this is the second line, should one ever slip through.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

function respond(
  kind: Kind,
  body: string | Uint8Array<ArrayBuffer>,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": TYPES[kind],
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "same-origin",
      ...(kind === "html" || kind === "svg" ? { "content-security-policy": CONTENT_SECURITY_POLICY } : {}),
      ...headers,
    },
  });
}

function json(value: unknown, status = 200): Response {
  return respond("json", JSON.stringify(value, null, 2) + "\n", status);
}

const PERIOD = /^([1-9]\d{0,3})([hd])$/;

/** An uptime badge's `period` (e.g. `24h`, `7d`, `30d`; at most 400 days or 9,600 hours). */
export function parsePeriod(text: string): { count: number; width: "hour" | "day" } {
  const match = PERIOD.exec(text);
  const count = Number(match?.[1]);
  const width = match?.[2] === "h" ? "hour" : "day";
  if (match === null || count > (width === "hour" ? 9_600 : 400)) {
    throw new RangeError(
      `Cannot read parameter 'period': expected hours or days such as 24h, 7d or 30d, at most 400d: got '${text}'`,
    );
  }
  return { count, width };
}

const UTF8 = new TextEncoder();

/** How long one reading of `/metrics` answers the scrapes that follow it. */
export const METRICS_REUSE_MS = 5_000;

/** What the handler keeps between requests. */
interface Caches {
  readonly pastDays: PastDaysCache;
  /** The text of `/metrics`, encoded once for every scrape that shares it. */
  readonly metrics: SharedRead<Uint8Array<ArrayBuffer>>;
}

/** The request handler. */
export function createHandler(context: RouteContext): (request: Request) => Promise<Response> {
  const caches: Caches = { pastDays: new PastDaysCache(), metrics: new SharedRead(METRICS_REUSE_MS) };
  return async (request) => {
    const url = new URL(request.url);
    const kind = kindOf(url.pathname);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return respond("text", "Cannot serve the request: only GET and HEAD are allowed\n", 405, {
        allow: "GET, HEAD",
      });
    }
    try {
      return await route(context, url, caches);
    } catch (error) {
      if (error instanceof RangeError) return problem(context, kind, 400, "Bad request", error.message);
      const unavailable = databaseUnavailable(error);
      if (unavailable !== null) {
        context.log.warn("database unavailable", { path: url.pathname, error: describeError(error) });
        const title = unavailable.migrated ? "Database unavailable" : "Database not migrated";
        return problem(context, kind, 503, title, unavailable.message, retryLater(kind));
      }
      context.log.error("request failed", { path: url.pathname, error: describeError(error) });
      return problem(
        context,
        kind,
        500,
        "Internal error",
        `Cannot serve the request: ${describeError(error)}`,
      );
    }
  };
}

/** The headers of a 503: when to ask again, and for a page, to reload itself then. */
function retryLater(kind: Kind): Record<string, string> {
  return { "retry-after": "10", ...(kind === "html" ? { refresh: "10" } : {}) };
}

// A name that cannot be read (NUL, bad percent-encoding) is shown as it came, percent-encoded.
function asRequested(segment: string, params: URLSearchParams): string {
  return segment === "" ? encodeURIComponent(params.get("name") ?? "") : segment;
}

function kindOf(path: string): Kind {
  if (path.startsWith("/api/")) return "json";
  if (path.startsWith("/badge/")) return "svg";
  if (path === "/metrics" || path === "/healthz") return "text";
  return "html";
}

function problem(
  context: PageContext,
  kind: Kind,
  status: number,
  title: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  switch (kind) {
    case "json":
      return respond("json", JSON.stringify({ error: message }) + "\n", status, headers);
    case "svg":
      return respond("svg", badge("monitor", title.toLowerCase(), "#9f9f9f"), status, headers);
    case "text":
      return respond("text", message + "\n", status, headers);
    case "html":
      return respond(
        "html",
        page(context, {
          heading: title,
          body: html`
            <h2 class="error" id="error">${status} ${title}</h2>
            <p id="message">${message}</p>
            <p><a href="/">all sites</a></p>
          `,
        }),
        status,
        headers,
      );
  }
}

async function route(context: RouteContext, url: URL, caches: Caches): Promise<Response> {
  const { pastDays } = caches;
  const path = url.pathname;
  const parts = path.split("/").slice(1);
  if (path === "/") {
    const query = parseSiteQuery(url.searchParams);
    const view = await context.read("read the sites", (sql) => loadSitesView(sql, query, pastDays));
    return respond("html", sitesPage(context, view));
  }
  if (path === "/api/sites") {
    const query = parseSiteQuery(url.searchParams);
    return json(
      sitesJson(await context.read("read the sites", (sql) => loadSitesView(sql, query, pastDays))),
    );
  }
  if (
    parts.length === 2 && parts[0] === "sites" ||
    parts.length === 3 && parts[0] === "api" && parts[1] === "sites"
  ) {
    const name = nameOf(parts.at(-1)!, url.searchParams);
    const view = name === null ? null : await context.read("read the site", (sql) => loadSiteView(sql, name));
    const api = parts[0] === "api";
    if (view === null) {
      return problem(
        context,
        api ? "json" : "html",
        404,
        "Not found",
        `Cannot find site '${name ?? asRequested(parts.at(-1)!, url.searchParams)}'`,
      );
    }
    return api ? json(siteDetailJson(view)) : respond("html", sitePage(context, view));
  }
  if (path === "/api/incidents") {
    const site = textParameter(url.searchParams, "site");
    const open = url.searchParams.get("open");
    if (open !== null && open !== "true" && open !== "false") {
      throw new RangeError(`Cannot read parameter 'open': expected true or false: got '${open}'`);
    }
    const [incidents, now] = await context.read("read the incidents", (sql) =>
      Promise.all([
        readIncidents(sql, { site, open: open === "true", limit: 500 }),
        readNow(sql),
      ]));
    return json({ generated_at: now.toISOString(), incidents: incidents.map((i) => incidentJson(i, now)) });
  }
  if (parts[0] === "badge" && (parts.length === 2 || parts.length === 3)) {
    return await badgeRoute(context, url, parts);
  }
  if (path === "/metrics") {
    const bytes = await caches.metrics.get(async () => {
      const [sites, locations] = await context.read(
        "read the metrics",
        (sql) => Promise.all([readSites(sql).then((page) => page.sites), readLocations(sql, null)]),
      );
      return UTF8.encode(formatServeMetrics(sites, locations));
    });
    return respond("text", bytes, 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  }
  if (path === "/healthz") {
    // Not a table read: a table locked by someone else keeps some pages waiting, yet the database answers.
    if (await context.read("check the database", readMigrated)) return respond("text", "ok\n");
    return problem(context, "text", 503, "Database not migrated", MIGRATE_ADVICE, retryLater("text"));
  }
  if (path === "/assets/style.css") {
    return respond("text", STYLE_CSS, 200, {
      "content-type": "text/css; charset=utf-8",
      "cache-control": "max-age=3600",
    });
  }
  if (path === "/assets/time.js") {
    return respond("text", TIME_JS, 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "max-age=3600",
    });
  }
  return problem(context, kindOf(path), 404, "Not found", `Cannot find '${path}'`);
}

async function badgeRoute(context: RouteContext, url: URL, parts: readonly string[]): Promise<Response> {
  const uptime = parts.length === 3;
  if (uptime ? parts[2] !== "uptime.svg" : !parts[1]!.endsWith(".svg")) {
    return problem(context, "svg", 404, "Not found", "not found");
  }
  const name = nameOf(uptime ? parts[1]! : parts[1]!.slice(0, -".svg".length), url.searchParams);
  const found = name === null ? null : await context.read("read the site", (sql) => readSite(sql, name));
  if (name === null || found === null) {
    return respond("svg", badge(name ?? "site", "not found", "#9f9f9f"), 404);
  }
  if (!uptime) return respond("svg", badge(name, found.site.state, stateColor(found.site.state)));
  // An empty `period=` is the default, as an empty parameter of the site lists is (./query.ts).
  const period = url.searchParams.get("period") || "30d";
  const { count, width } = parsePeriod(period);
  const figures = await context.read(
    "read the uptime",
    (sql) => readUptimePeriod(sql, name, found.now, count, width),
  );
  return respond("svg", badge(`uptime ${period}`, formatPercent(figures), uptimeColor(figures)));
}
