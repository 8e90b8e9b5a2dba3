import { assertEquals, assertMatch } from "./_assert.ts";
import {
  type Bucket,
  dailyBars,
  percentileChart,
  slots,
  sparkline,
  uptimeClass,
} from "../src/serve/charts.ts";
import { badge, stateColor, uptimeColor } from "../src/serve/badge.ts";
import { formatServeMetrics, labelValue } from "../src/serve/metrics_text.ts";

const day = (iso: string, checks: number, up: number, p50: number | null = 10): Bucket => ({
  bucket: new Date(iso),
  checks,
  upChecks: up,
  uptimePercent: checks === 0 ? null : Math.round((100_000 * up) / checks) / 1000,
  p50Ms: p50,
  p95Ms: p50 === null ? null : p50 * 2,
  p99Ms: p50 === null ? null : p50 * 3,
});

Deno.test("slots places buckets by time and leaves gaps null", () => {
  const first = new Date("2026-11-01T00:00:00Z");
  const placed = slots(
    [day("2026-11-03T00:00:00Z", 5, 5), day("2026-10-31T00:00:00Z", 1, 1)],
    first,
    3,
    86_400_000,
  );
  assertEquals(placed.map((b) => b?.checks ?? null), [null, null, 5]);
});

Deno.test("dailyBars draws one bar per day, coloured by uptime, each with its figures", () => {
  const first = new Date("2026-11-28T00:00:00Z");
  const bars = dailyBars([
    null,
    day("2026-11-29T00:00:00Z", 2880, 2879),
    day("2026-11-30T00:00:00Z", 100, 90),
  ], first);
  assertEquals(
    bars.value,
    `<span class="bars" role="img" aria-label="uptime per day, last 3 days">` +
      `<i class="none" title="Nov 28: no data"></i>` +
      `<i title="Nov 29: 99.96% of 2880"></i>` +
      `<i class="bad" title="Nov 30: 90.00% of 100"></i></span>`,
  );
  assertEquals([null, 100, 99.95, 99.5, 96, 80].map(uptimeClass), [
    "none",
    "ok",
    "ok",
    "minor",
    "major",
    "bad",
  ]);
});

Deno.test("sparkline draws a polyline through the points with data", () => {
  const svg = sparkline([10, null, 20], "p50 per hour").value;
  assertMatch(
    svg,
    /^\n?<svg class="spark" viewBox="0 0 96 20" width="96" height="20" role="img"\s+aria-label="p50 per hour">/,
  );
  assertMatch(svg, /<title>p50 per hour, max 20\.0 ms<\/title><polyline points="0,10 96,1"\/><\/svg>\n?$/);
  assertMatch(sparkline([null, null], "x").value, /<title>x, max –<\/title><\/svg>\n?$/);
});

Deno.test("percentileChart draws three lines and a point per bucket with data", () => {
  const first = new Date("2026-11-30T00:00:00Z");
  const svg = percentileChart(
    [day("2026-11-30T00:00:00Z", 10, 10), null, day("2026-11-30T02:00:00Z", 10, 9, 30)],
    first,
    3_600_000,
    "last 3 hours",
  ).value;
  assertEquals(svg.match(/<polyline /g)?.length, 3);
  assertEquals(svg.match(/<circle /g)?.length, 2);
  assertMatch(
    svg,
    /<title>2026-11-30 02:00 UTC: p50 30\.0 ms, p95 60\.0 ms, p99 90\.0 ms, 90\.00% up of 10<\/title>/,
  );
  assertMatch(svg, />90\.0 ms<\/text>/);
  assertMatch(svg, />00:00 UTC<\/text>.*>02:00 UTC<\/text>/);
});

Deno.test("badge escapes its text and takes the state's colour", () => {
  const svg = badge("<b>", "up", stateColor("up"));
  assertMatch(
    svg,
    /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="20" role="img" aria-label="&lt;b&gt;: up">/,
  );
  assertMatch(svg, /<title>&lt;b&gt;: up<\/title>/);
  assertMatch(svg, /fill="#4c1"/);
  assertEquals([stateColor("degraded"), stateColor("down"), stateColor("stale")], [
    "#dfb317",
    "#e05d44",
    "#9f9f9f",
  ]);
  assertEquals([uptimeColor(null), uptimeColor(99.95), uptimeColor(99.5), uptimeColor(97), uptimeColor(50)], [
    "#9f9f9f",
    "#4c1",
    "#dfb317",
    "#fe7d37",
    "#e05d44",
  ]);
});

Deno.test("badge replaces the characters XML cannot hold, so the SVG is well-formed", () => {
  const svg = badge("a\x01b\x1b[31m\ud800", "up\uffff\x00", stateColor("up"));
  assertEquals(/[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.test(svg), false);
  assertMatch(svg, /aria-label="a\ufffdb\ufffd\[31m\ufffd: up\ufffd\ufffd"/);
  // Astral characters are XML characters and stay.
  assertMatch(badge("🚀", "up", stateColor("up")), /<title>🚀: up<\/title>/);
});

Deno.test("metrics escape label values and give every location and site its series", () => {
  assertEquals(labelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const at = new Date("2026-11-30T06:00:00Z");
  const text = formatServeMetrics(
    [{
      name: 'we"ird',
      url: "http://x/",
      state: "degraded",
      since: at,
      locationsUp: 1,
      locationsDown: 1,
      locationsStale: 0,
      openIncident: { startedAt: at, worstState: "degraded" },
    }],
    [{
      site: 'we"ird',
      location: "eu",
      up: false,
      stale: false,
      since: at,
      checkedAt: at,
      consecutiveFailures: 3,
      status: null,
      durationMs: 1500,
      errorKind: "timeout",
      errorMessage: "x",
      certExpiresAt: new Date("2027-01-01T00:00:00Z"),
    }],
  );
  for (
    const line of [
      'monitor_probe_success{site="we\\"ird",location="eu"} 0',
      'monitor_probe_duration_seconds{site="we\\"ird",location="eu"} 1.5',
      'monitor_probe_http_status_code{site="we\\"ird",location="eu"} 0',
      'monitor_probe_ssl_earliest_cert_expiry{site="we\\"ird",location="eu"} 1798761600',
      'monitor_probe_consecutive_failures{site="we\\"ird",location="eu"} 3',
      'monitor_site_up{site="we\\"ird"} 0',
      'monitor_site_state{site="we\\"ird",state="degraded"} 1',
      'monitor_site_state{site="we\\"ird",state="up"} 0',
      'monitor_site_locations{site="we\\"ird",state="down"} 1',
      'monitor_site_incident_open{site="we\\"ird"} 1',
      "# TYPE monitor_probe_success gauge",
    ]
  ) assertEquals(text.split("\n").includes(line), true, line);
});
