/**
 * `monitor serve` against a database filled through the writer (tests/_serve_data.ts), connected as a role that
 * may only SELECT: the JSON API's exact values, badges, /metrics, 404s and escaping of hostile strings.
 */
import postgres from "postgres";
import { assert_, assertEquals, assertMatch } from "./_assert.ts";
import { ADMIN_URL, createTestDatabase } from "./_pg.ts";
import { fillServeDatabase, HOSTILE, HOSTILE_ERROR } from "./_serve_data.ts";
import { createReadOnlyRole, dropRole, getFrom, startServe } from "./_serve.ts";
import { connectDatabase } from "../src/db/connect.ts";
import { silentLogger } from "../src/log.ts";

// assert_.ok cannot be called as an assertion function: its export has no explicit type.
const assertOk: (condition: boolean, message?: string) => void = assert_.ok;

const MINUTE = 60_000;
const t = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
const ago = (minutes: number) => new Date(t.getTime() - minutes * MINUTE).toISOString();

const db = await createTestDatabase("monitor_serve");
await fillServeDatabase(db.sql, t);
const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
const role = await createReadOnlyRole(db.sql, db.name);
const readUrl = new URL(db.url);
readUrl.username = role;
const serve = await startServe(readUrl.toString(), ["--title", "Test <status>"]);

async function get(path: string): Promise<{ status: number; type: string; text: string }> {
  const { status, type, text } = await getFrom(serve.base, path);
  return { status, type, text };
}

async function getJson(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const { status, type, text } = await get(path);
  assertEquals(type, "application/json; charset=utf-8");
  return { status, body: JSON.parse(text) };
}

const ALPHA = {
  name: "alpha",
  url: "https://alpha.example.test/",
  state: "up",
  since: ago(50),
  locations: { up: 2, down: 0, stale: 0 },
  uptime: { "24h": 100, "7d": 100, "30d": 100 },
  p95_ms_24h: 194.8,
  open_incident: null,
};
const BETA = {
  name: "beta",
  url: "https://beta.example.test/",
  state: "degraded",
  since: ago(10),
  locations: { up: 1, down: 1, stale: 0 },
  uptime: { "24h": 76.923, "7d": 76.923, "30d": 76.923 },
  p95_ms_24h: 77.3,
  open_incident: { started_at: ago(10), worst_state: "degraded" },
};
const STALE = {
  name: HOSTILE,
  url: "http://127.0.0.1:9/?q=<i>x</i>",
  state: "stale",
  // The last check 70 minutes ago, silent after 3 intervals of 10 minutes.
  since: ago(40),
  locations: { up: 0, down: 0, stale: 1 },
  uptime: { "24h": 100, "7d": 100, "30d": 100 },
  p95_ms_24h: 19.4,
  open_incident: null,
};

Deno.test("/api/sites lists every site, open incidents first, with exact state and uptime", async () => {
  const { status, body } = await getJson("/api/sites");
  assertEquals(status, 200);
  assertMatch(String(body.generated_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  delete body.generated_at;
  assertEquals(body, {
    total: 3,
    page: 1,
    per_page: 50,
    counts: { up: 1, degraded: 1, down: 0, stale: 1 },
    sites: [BETA, STALE, ALPHA],
  });
});

Deno.test("/api/sites filters by name and state and pages", async () => {
  assertEquals((await getJson("/api/sites?q=SCRIPT&state=stale")).body.sites, [STALE]);
  assertEquals((await getJson("/api/sites?q=a&state=up")).body.sites, [ALPHA]);
  const second = (await getJson("/api/sites?per_page=2&page=2")).body;
  assertEquals([second.total, second.page, second.sites], [3, 2, [ALPHA]]);
  const bad = await getJson("/api/sites?state=sideways");
  assertEquals(bad, {
    status: 400,
    body: {
      error: "Cannot read parameter 'state': expected one of up, degraded, down, stale: got 'sideways'",
    },
  });
});

Deno.test("/api/sites/<name> gives locations, series, incidents and failed checks", async () => {
  const { status, body } = await getJson("/api/sites/beta");
  assertEquals(status, 200);
  const now = Date.parse(String(body.generated_at));
  delete body.generated_at;
  // beta's newest check starts a minute before t: its hour and day are the series' last (t may start an hour).
  const newest = t.getTime() - MINUTE;
  const hourOfT = Math.floor(newest / 3_600_000) * 3_600_000;
  const dayOfT = Math.floor(newest / 86_400_000) * 86_400_000;
  // Which checks fall in which hour depends on the minute the test runs at; count them the same way.
  const betaChecks = [50, 40, 30, 20, 10, 1].map((m) => ({ m, up: true }))
    .concat([[50, true], [45, false], [40, true], [30, true], [20, true], [10, false], [1, false]].map(
      ([m, up]) => ({ m: m as number, up: up as boolean }),
    ));
  const countBy = (width: number) => {
    const buckets = new Map<number, { checks: number; up: number }>();
    for (const c of betaChecks) {
      const bucket = Math.floor((t.getTime() - c.m * MINUTE) / width) * width;
      const entry = buckets.get(bucket) ?? { checks: 0, up: 0 };
      entry.checks++;
      if (c.up) entry.up++;
      buckets.set(bucket, entry);
    }
    return buckets;
  };
  const hours = countBy(3_600_000);
  const series = body.series as { hourly: Record<string, unknown>[]; daily: Record<string, unknown>[] };
  assertEquals(
    series.hourly.map((h) => [h.bucket, h.checks, h.up_checks]),
    [...hours.entries()].sort(([a], [b]) => a - b).map((
      [hour, e],
    ) => [new Date(hour).toISOString(), e.checks, e.up]),
  );
  assertOk(series.hourly.some((h) => Date.parse(String(h.bucket)) === hourOfT));
  // All 13 checks on t's day (10 up: 76.923 %), unless the test runs in the first 50 minutes of a UTC day.
  const lastDay = countBy(86_400_000).get(dayOfT)!;
  const percent = Math.round(100_000 * lastDay.up / lastDay.checks) / 1000;
  if (lastDay.checks === 13) assertEquals([lastDay.up, percent], [10, 76.923]);
  assertEquals(series.daily.map((d) => [d.checks, d.up_checks, d.uptime_percent]).at(-1), [
    lastDay.checks,
    lastDay.up,
    percent,
  ]);
  assertOk(series.daily.length <= 2 && Date.parse(String(series.daily.at(-1)!.bucket)) === dayOfT);
  delete body.series;
  const incidents = body.incidents as Record<string, unknown>[];
  assertEquals(incidents, [{
    site: "beta",
    started_at: ago(10),
    ended_at: null,
    duration_seconds: Math.round((now - (t.getTime() - 10 * MINUTE)) / 1000),
    worst_state: "degraded",
    locations: ["us-east"],
    error_kind: "http",
    error_message: HOSTILE_ERROR,
  }, {
    site: "beta",
    started_at: ago(45),
    ended_at: ago(40),
    duration_seconds: 300,
    worst_state: "degraded",
    locations: ["us-east"],
    error_kind: "http",
    error_message: HOSTILE_ERROR,
  }]);
  delete body.incidents;
  const failure = (minutes: number) => ({
    started_at: ago(minutes),
    location: "us-east",
    agent: "agent-us-east",
    status: 503,
    duration_ms: 3000,
    error_kind: "http",
    error_message: HOSTILE_ERROR,
  });
  assertEquals(body.recent_failures, [failure(1), failure(10), failure(45)]);
  delete body.recent_failures;
  assertEquals(body, {
    ...BETA,
    location_status: [
      {
        location: "eu-west",
        state: "up",
        up: true,
        stale: false,
        since: ago(50),
        checked_at: ago(1),
        consecutive_failures: 0,
        status: 200,
        duration_ms: 50,
        error_kind: null,
        error_message: null,
        cert_expires_at: null,
        uptime: { "24h": 100, "7d": 100, "30d": 100 },
        p95_ms_24h: 48.7,
      },
      {
        location: "us-east",
        state: "down",
        up: false,
        stale: false,
        since: ago(10),
        checked_at: ago(1),
        consecutive_failures: 2,
        status: 503,
        duration_ms: 3000,
        error_kind: "http",
        error_message: HOSTILE_ERROR,
        cert_expires_at: null,
        uptime: { "24h": 57.143, "7d": 57.143, "30d": 57.143 },
        p95_ms_24h: 77.3,
      },
    ],
  });
});

Deno.test("/api/sites/<name> shows the certificate expiry the latest check measured", async () => {
  const { body } = await getJson("/api/sites/alpha");
  const locations = body.location_status as Record<string, unknown>[];
  const expiry = new Date(t.getTime() + 40 * 86_400_000).toISOString();
  assertEquals(locations.map((l) => [l.location, l.cert_expires_at]), [["eu-west", expiry], [
    "us-east",
    expiry,
  ]]);
  const page = await get("/sites/alpha");
  assertMatch(page.text, /expires <time datetime="[^"]+"[^>]*>[^<]+<\/time> \(in 39 d 23 h\)/);
});

Deno.test("/api/incidents lists open incidents first, filtered by site and openness", async () => {
  const all = await getJson("/api/incidents");
  assertEquals(all.status, 200);
  const incidents = all.body.incidents as Record<string, unknown>[];
  assertEquals(
    incidents.map((i) => [i.site, i.started_at, i.ended_at, i.worst_state, i.duration_seconds]).slice(1),
    [
      ["beta", ago(45), ago(40), "degraded", 300],
    ],
  );
  assertEquals(incidents.map((i) => [i.site, i.started_at, i.ended_at, i.worst_state]).slice(0, 1), [
    ["beta", ago(10), null, "degraded"],
  ]);
  assertEquals((await getJson("/api/incidents?site=alpha")).body.incidents, []);
  assertEquals(((await getJson("/api/incidents?open=true")).body.incidents as unknown[]).length, 1);
  assertEquals((await getJson("/api/incidents?open=maybe")).status, 400);
});

Deno.test("badges show the state and the uptime of a period, escaped; unknown sites get a 404 badge", async () => {
  const label = (svg: string) => /aria-label="([^"]*)"/.exec(svg)?.[1];
  const alpha = await get("/badge/alpha.svg");
  assertEquals([alpha.status, alpha.type, label(alpha.text)], [
    200,
    "image/svg+xml; charset=utf-8",
    "alpha: up",
  ]);
  assertMatch(alpha.text, /fill="#4c1"/);
  assertEquals(label((await get("/badge/beta.svg")).text), "beta: degraded");
  const hostile = await get(`/badge/${encodeURIComponent(HOSTILE)}.svg`);
  assertEquals(label(hostile.text), "&lt;script&gt;alert(1)&lt;/script&gt;: stale");
  assertEquals(hostile.text.includes("<script>"), false);
  assertEquals(label((await get("/badge/beta/uptime.svg?period=24h")).text), "uptime 24h: 76.92%");
  assertEquals(label((await get("/badge/alpha/uptime.svg")).text), "uptime 30d: 100%");
  assertEquals(label((await get("/badge/alpha/uptime.svg?period=")).text), "uptime 30d: 100%");
  const missing = await get("/badge/nope.svg");
  assertEquals([missing.status, label(missing.text)], [404, "nope: not found"]);
  assertEquals((await get("/badge/alpha/uptime.svg?period=1y")).status, 400);
});

Deno.test("pages and badges load nothing inline or from elsewhere, and no answer is sniffed", async () => {
  for (const path of ["/", "/sites/alpha", "/badge/alpha.svg", "/no-such-page", "/api/sites", "/metrics"]) {
    const { headers } = await getFrom(serve.base, path);
    assertEquals(headers.get("x-content-type-options"), "nosniff", path);
    const policy = headers.get("content-security-policy");
    if (path.startsWith("/api/") || path === "/metrics") continue;
    assertEquals(
      policy?.includes("default-src 'none'") && policy.includes("frame-ancestors 'none'"),
      true,
      path,
    );
    assertEquals(policy?.includes("unsafe-inline"), false, path);
  }
});

Deno.test("/metrics gives per-location probe series and the site's state", async () => {
  const { status, type, text } = await get("/metrics");
  assertEquals([status, type], [200, "text/plain; version=0.0.4; charset=utf-8"]);
  const lines = new Set(text.split("\n"));
  const h = '"<script>alert(1)</script>"';
  for (
    const line of [
      'monitor_probe_success{site="alpha",location="eu-west"} 1',
      'monitor_probe_success{site="beta",location="us-east"} 0',
      'monitor_probe_duration_seconds{site="alpha",location="us-east"} 0.2',
      'monitor_probe_duration_seconds{site="beta",location="us-east"} 3',
      'monitor_probe_http_status_code{site="beta",location="us-east"} 503',
      `monitor_probe_ssl_earliest_cert_expiry{site="alpha",location="eu-west"} ${
        (t.getTime() + 40 * 86_400_000) / 1000
      }`,
      `monitor_probe_stale{site=${h},location="eu-west"} 1`,
      'monitor_probe_consecutive_failures{site="beta",location="us-east"} 2',
      'monitor_site_up{site="alpha"} 1',
      'monitor_site_up{site="beta"} 0',
      'monitor_site_state{site="beta",state="degraded"} 1',
      `monitor_site_state{site=${h},state="stale"} 1`,
      'monitor_site_locations{site="beta",state="down"} 1',
      'monitor_site_incident_open{site="beta"} 1',
    ]
  ) assertOk(lines.has(line), `missing: ${line}`);
  assertEquals([...lines].filter((l) => l.startsWith("monitor_probe_success{")).length, 5);
  assertEquals(text.includes('monitor_probe_ssl_earliest_cert_expiry{site="beta"'), false);
});

Deno.test("unknown sites and paths get 404 pages, and /healthz answers", async () => {
  const page = await get("/sites/nope");
  assertEquals([page.status, page.type], [404, "text/html; charset=utf-8"]);
  assertMatch(page.text, /<p id="message">Cannot find site &#39;nope&#39;<\/p>/);
  assertEquals(await getJson("/api/sites/nope"), { status: 404, body: { error: "Cannot find site 'nope'" } });
  assertEquals((await get("/elsewhere")).status, 404);
  assertEquals(await get("/healthz"), { status: 200, type: "text/plain; charset=utf-8", text: "ok\n" });
  const post = await fetch(serve.base + "/", { method: "POST" });
  assertEquals([post.status, await post.text()], [
    405,
    "Cannot serve the request: only GET and HEAD are allowed\n",
  ]);
});

Deno.test("hostile names, URLs, titles and error messages render as text", async () => {
  const front = await get("/");
  assertEquals(front.status, 200);
  for (
    const text of [
      front.text,
      (await get(`/sites/${encodeURIComponent(HOSTILE)}`)).text,
      (await get("/sites/beta")).text,
    ]
  ) {
    assertEquals(text.includes("<script>alert"), false);
    assertEquals(text.includes("<b>Service"), false);
    assertEquals(text.includes("<i>x</i>"), false);
    assertEquals(text.includes("<status>"), false);
  }
  assertMatch(
    front.text,
    /<a href="\/sites\/%3Cscript%3Ealert\(1\)%3C%2Fscript%3E"><bdi>&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/bdi><\/a>/,
  );
  assertMatch(front.text, /<title>Test &lt;status&gt;<\/title>/);
  assertMatch(
    (await get("/sites/beta")).text,
    /<code>http: Status 503 is not in 200-399: &lt;b&gt;Service Unavailable&lt;\/b&gt;<\/code>/,
  );
});

Deno.test("a page past the last says so and links back to the last page", async () => {
  const past = await get("/?per_page=2&page=7");
  assertEquals(past.status, 200);
  assertMatch(past.text, /No site on this page\./);
  assertMatch(past.text, /<span>page 7 of 2<\/span><a href="\/\?page=2&amp;per_page=2">← last page<\/a>/);
  const alone = await get("/?page=3");
  assertMatch(alone.text, /<span>page 3 of 1<\/span><a href="\/">← last page<\/a>/);
  assertEquals((await get("/?q=nothing-like-this")).text.includes("No site matches."), true);
});

Deno.test("the front page shows every site with 90 bars, a sparkline, and reloads itself keeping the filter", async () => {
  const { text } = await get("/?q=et");
  assertEquals(text.match(/<tr class="site/g)?.length, 1);
  assertMatch(text, /<meta http-equiv="refresh" content="30">/);
  assertMatch(text, /<input type="search" name="q" value="et"/);
  assertEquals(text.match(/<i[ >]/g)?.length, 90);
  assertEquals(text.match(/<svg class="spark"/g)?.length, 1);
  const all = await get("/");
  assertEquals(
    [...all.text.matchAll(/<tr class="site[^"]*" data-state="(\w+)"/g)].map((m) => m[1]),
    ["degraded", "stale", "up"],
  );
});

Deno.test("the read side's sessions are read-only even for a role that may write", async () => {
  const sql = await connectDatabase({ url: db.url, log: silentLogger, readOnly: true, max: 1 });
  try {
    await sql`create table nope (x int)`;
    assertOk(false, "a read-only session created a table");
  } catch (error) {
    assertEquals((error as { code?: string }).code, "25006");
  } finally {
    await sql.end();
  }
});

Deno.test({
  name: "stop the server and drop the database",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { code, stderr } = await serve.stop();
    assertEquals(code, 0, stderr);
    assertEquals(stderr.includes("permission denied"), false, stderr);
    await db.drop();
    await dropRole(admin, role);
    await admin.end();
  },
});
