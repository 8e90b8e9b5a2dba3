/**
 * The status page in a real browser: Debian's Chromium, driven headless by puppeteer-core, against
 * `monitor serve` on a database with 90 days of history (tests/_demo_data.ts). Loads `/`, checks the rows,
 * states and bars, filters by name, opens a site page and checks its chart is drawn, and saves the screenshots
 * to .scratch/screenshots/ (docs/ with SCREENSHOTS_TO_DOCS=1, for the README). Skips, saying so loudly, only where no Chromium
 * is installed (`.ci/run` installs it with apt-get).
 */
import puppeteer from "puppeteer-core";
import { assertEquals, assertMatch } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { DEMO_SITES, DEMO_STATES, demoChecks } from "./_demo_data.ts";
import { writeChecks } from "./_serve_data.ts";
import { startServe } from "./_serve.ts";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const found = await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!found) {
  console.error(
    `\n*** SKIPPING the browser test: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM) ***\n`,
  );
}
// Screenshots go to .scratch/screenshots/ (ignored by git) so a test run leaves the tree clean;
// SCREENSHOTS_TO_DOCS=1 writes them to docs/, where the README shows them.
const docs = Deno.env.get("SCREENSHOTS_TO_DOCS") === "1"
  ? new URL("../docs/", import.meta.url).pathname
  : new URL("../.scratch/screenshots/", import.meta.url).pathname;
await Deno.mkdir(docs, { recursive: true });

Deno.test({
  name: "the status page in Chromium: rows, states, 90 bars, filter, site page chart, screenshots",
  ignore: !found,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const db = await createTestDatabase("monitor_browser");
    const t = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    await writeChecks(db.sql, demoChecks(t));
    const serve = await startServe(db.url, ["--title", "Example Corp status"]);
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    try {
      const page = await browser.newPage();
      // What the pages' content security policy refused, as Chromium reports it: nothing must be.
      const refused: string[] = [];
      page.on("console", (message) => {
        if (/Content Security Policy/i.test(message.text())) refused.push(message.text());
      });
      await page.emulateTimezone("Asia/Tokyo");
      await page.setViewport({ width: 1280, height: 800 });
      const response = await page.goto(serve.base + "/", { waitUntil: "load" });
      assertEquals(response?.status(), 200);

      const rows = await page.$$eval("tr.site", (trs) =>
        trs.map((tr) => ({
          name: tr.querySelector("td a")?.textContent,
          state: tr.querySelector(".state")?.textContent,
          bars: tr.querySelectorAll(".bars i").length,
          coloured: tr.querySelectorAll(".bars i.bad, .bars i.major, .bars i.minor").length,
          spark: tr.querySelector("svg.spark polyline")?.getAttribute("points")?.split(" ").length ?? 0,
        })));
      assertEquals(rows.length, DEMO_SITES.length);
      assertEquals(
        Object.fromEntries(rows.map((r) => [r.name, r.state])),
        Object.fromEntries(DEMO_SITES.map(([name]) => [name, DEMO_STATES[name]])),
      );
      // Open incidents first: the down and the degraded site lead.
      assertEquals(rows.slice(0, 2).map((r) => r.state).sort(), ["degraded", "down"]);
      for (const row of rows) {
        assertEquals(row.bars, 90, `${row.name}: bars`);
        assertEquals(row.spark >= 20, true, `${row.name}: sparkline points ${row.spark}`);
      }
      assertEquals(rows.find((r) => r.name === "payments")!.coloured >= 1, true);
      // Bars are drawn with a width and height, and the page's times are in the viewer's zone (UTC on hover).
      const bar = await page.$eval(
        ".bars i",
        (i) => [i.getBoundingClientRect().width, i.getBoundingClientRect().height],
      );
      assertEquals(bar, [3, 24]);
      const [shown, hover] = await page.$eval(
        "footer time",
        (el) => [el.textContent ?? "", el.getAttribute("title") ?? ""],
      );
      assertMatch(hover, /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
      assertEquals(shown.endsWith("UTC"), false, `localized: ${shown}`);
      await page.screenshot({ path: `${docs}status-page.png`, fullPage: true });

      await page.type("input[name=q]", "pay");
      await Promise.all([page.waitForNavigation(), page.click("form.filter button")]);
      assertEquals(new URL(page.url()).search, "?q=pay&state=");
      assertEquals(await page.$$eval("tr.site td a", (as) => as.map((a) => a.textContent)), ["payments"]);
      assertEquals(await page.$eval("input[name=q]", (input) => input.getAttribute("value")), "pay");

      await Promise.all([page.waitForNavigation(), page.click("tr.site td a")]);
      assertEquals(new URL(page.url()).pathname, "/sites/payments");
      assertEquals(await page.$eval("#site-name", (h) => h.textContent), "payments");
      const charts = await page.$$eval("svg.chart", (svgs) =>
        svgs.map((svg) => ({
          points: svg.querySelectorAll("circle.pt").length,
          lines: svg.querySelectorAll("polyline").length,
          height: svg.getBoundingClientRect().height,
        })));
      assertEquals(charts.length, 2);
      assertEquals(
        charts[0]!.points >= 20 && charts[0]!.points <= 24,
        true,
        `24 h points: ${charts[0]!.points}`,
      );
      assertEquals(charts[1]!.points, 30);
      for (const chart of charts) assertEquals([chart.lines, chart.height > 100], [3, true]);
      assertEquals(await page.$$eval("tr.location", (trs) => trs.length), 2);
      // The bad day 30 days ago left incidents, each with a duration and a cause.
      const incidents = await page.$$eval("tr.incident-row", (trs) => trs.map((tr) => tr.textContent ?? ""));
      assertEquals(incidents.length >= 1, true);
      for (const text of incidents) {
        assertMatch(text, /\d+ (d|h|min|s)[\s\S]*http: Status 503 is not in 200-399/);
      }
      assertEquals(await page.$$eval("table.failures th", (ths) => ths.length), 5);
      await page.screenshot({ path: `${docs}site-page.png`, fullPage: true });
      assertEquals(refused, []);
    } finally {
      await browser.close();
      await serve.stop();
      await db.drop();
    }
  },
});
