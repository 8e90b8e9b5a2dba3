import { assertEquals, assertThrows } from "./_assert.ts";
import { escapeHtml, html, raw } from "../src/serve/html.ts";
import { page } from "../src/serve/layout.ts";
import { formatDurationHuman, formatMs, formatPercent, formatUtc } from "../src/serve/format.ts";
import { parseSiteQuery, sitesQueryString } from "../src/serve/query.ts";
import { parsePeriod } from "../src/serve/routes.ts";
import { parseListen } from "../src/serve/command.ts";
import { UsageError } from "../src/args.ts";

Deno.test("html escapes every interpolated string and keeps nested html as markup", () => {
  assertEquals(
    html`<td title="${`"x" & 'y'`}">${"<script>alert(1)</script>"}</td>`.value,
    `<td title="&quot;x&quot; &amp; &#39;y&#39;">&lt;script&gt;alert(1)&lt;/script&gt;</td>`,
  );
  assertEquals(
    html`<ul>${["<a>", "b"].map((x) => html`<li>${x}</li>`)}</ul>`.value,
    "<ul><li>&lt;a&gt;</li><li>b</li></ul>",
  );
  assertEquals(html`${null}${undefined}${false}${0}${raw("<br>")}`.value, "0<br>");
  assertEquals(escapeHtml("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
});

Deno.test("formatPercent truncates to two decimals and shows 100% only for a perfect period", () => {
  assertEquals(formatPercent(99.996), "99.99%");
  assertEquals(formatPercent(100), "100%");
  assertEquals(formatPercent(50), "50.00%");
  assertEquals(formatPercent(0), "0.00%");
  assertEquals(formatPercent(null), "–");
});

Deno.test("formatDurationHuman uses the largest two units", () => {
  assertEquals(formatDurationHuman(0), "0 s");
  assertEquals(formatDurationHuman(999), "0 s");
  assertEquals(formatDurationHuman(45_000), "45 s");
  assertEquals(formatDurationHuman(7_500_000), "2 h 5 min");
  assertEquals(formatDurationHuman(86_400_000), "1 d");
  assertEquals(formatDurationHuman(86_400_000 + 4 * 3_600_000 + 59_000), "1 d 4 h");
  assertEquals(formatDurationHuman(3_600_000 + 30_000), "1 h");
  assertEquals(formatDurationHuman(-5), "0 s");
});

Deno.test("formatMs and formatUtc", () => {
  assertEquals(formatMs(12.25), "12.3 ms");
  assertEquals(formatMs(1234.5), "1,235 ms");
  assertEquals(formatMs(null), "–");
  assertEquals(formatUtc(new Date("2026-11-30T06:05:48.123Z")), "2026-11-30 06:05 UTC");
});

Deno.test("parseSiteQuery reads filter and paging, rejects bad values with the parameter named", () => {
  assertEquals(parseSiteQuery(new URLSearchParams("")), { q: "", state: null, page: 1, perPage: 50 });
  assertEquals(parseSiteQuery(new URLSearchParams("q=+shop+&state=down&page=3&per_page=10")), {
    q: "shop",
    state: "down",
    page: 3,
    perPage: 10,
  });
  assertThrows(
    () => parseSiteQuery(new URLSearchParams("state=sideways")),
    RangeError,
    "Cannot read parameter 'state': expected one of up, degraded, down, stale: got 'sideways'",
  );
  assertThrows(
    () => parseSiteQuery(new URLSearchParams("per_page=501")),
    RangeError,
    "Cannot read parameter 'per_page': expected a whole number from 1 to 500: got '501'",
  );
  assertThrows(() => parseSiteQuery(new URLSearchParams("page=0")), RangeError);
  assertEquals(
    sitesQueryString({ q: "a b", state: "up", page: 1, perPage: 50 }, 2),
    "?q=a+b&state=up&page=2",
  );
  assertEquals(sitesQueryString({ q: "", state: null, page: 1, perPage: 50 }, 1), "");
});

Deno.test("parsePeriod reads hours and days up to 400 days", () => {
  assertEquals(parsePeriod("24h"), { count: 24, width: "hour" });
  assertEquals(parsePeriod("30d"), { count: 30, width: "day" });
  assertEquals(parsePeriod("400d"), { count: 400, width: "day" });
  assertThrows(
    () => parsePeriod("1y"),
    RangeError,
    "Cannot read parameter 'period': expected hours or days such as 24h, 7d or 30d, at most 400d: got '1y'",
  );
  assertThrows(() => parsePeriod("401d"), RangeError);
  assertThrows(() => parsePeriod("0d"), RangeError);
  assertThrows(() => parsePeriod("9601h"), RangeError);
});

Deno.test("parseListen reads HOST:PORT and :PORT", () => {
  assertEquals(parseListen("127.0.0.1:8080"), { hostname: "127.0.0.1", port: 8080 });
  assertEquals(parseListen(":9000"), { hostname: "0.0.0.0", port: 9000 });
  assertEquals(parseListen("[::1]:80"), { hostname: "::1", port: 80 });
  assertThrows(
    () => parseListen("8080"),
    UsageError,
    "Cannot use flag '--listen': expected HOST:PORT or :PORT: got '8080'",
  );
});

Deno.test("a page's title holds no bidi control of a name, which would reverse the rest of it", () => {
  const text = page({ title: "Status" }, { heading: "bidi\u202egnp.exe\u2066x\u200f", body: html`` });
  assertEquals(/<title>(.*)<\/title>/.exec(text)?.[1], "bidignp.exex · Status");
});
