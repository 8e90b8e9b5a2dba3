/**
 * `monitor serve` and awkward site names and input: the names `.` and `..` (which URL parsers remove from
 * paths) reachable from every page, NUL in a name or a parameter (a 404 or a 400, never a query), and badges
 * that stay well-formed XML for a stored name holding a control character.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { makeCheck } from "./_checks.ts";
import { createTestDatabase } from "./_pg.ts";
import { writeChecks } from "./_serve_data.ts";
import { getFrom, startServe } from "./_serve.ts";
import { nameOf, sitePath, stateBadgePath, uptimeBadgePath } from "../src/serve/links.ts";

const NAMES = [".", "..", "a/b", "x\x01y"];
const db = await createTestDatabase("monitor_serve_names");
const t = new Date(Math.floor(Date.now() / 60_000) * 60_000);
await writeChecks(db.sql, NAMES.map((name) => makeCheck(name, new Date(t.getTime() - 60_000))));
const serve = await startServe(db.url);

const get = (path: string) => getFrom(serve.base, path);

/** The value of `href` attributes matching `pattern`, as a browser reads them (entities decoded). */
function links(page: string, pattern: RegExp): string[] {
  return [...page.matchAll(/href="([^"]*)"/g)].map((m) => m[1]!.replaceAll("&amp;", "&"))
    .filter((href) => pattern.test(href));
}

const label = (svg: string) => /aria-label="([^"]*)"/.exec(svg)?.[1];

Deno.test("links use ?name= for . and .. only, and nameOf() reads both forms", () => {
  assertEquals(NAMES.map(sitePath), ["/sites/?name=.", "/sites/?name=..", "/sites/a%2Fb", "/sites/x%01y"]);
  assertEquals([stateBadgePath(".."), stateBadgePath("a/b")], ["/badge/.svg?name=..", "/badge/a%2Fb.svg"]);
  assertEquals([uptimeBadgePath("..", "7d"), uptimeBadgePath("a", "7d")], [
    "/badge//uptime.svg?name=..&period=7d",
    "/badge/a/uptime.svg?period=7d",
  ]);
  const params = (text: string) => new URLSearchParams(text);
  assertEquals(
    [
      nameOf("a%2Fb", params("name=x")),
      nameOf("", params("name=..")),
      nameOf("", params("")),
      nameOf("", params("name=")),
      nameOf("%E0%A4%A", params("")),
      nameOf("%00", params("")),
      nameOf("", params("name=a%00")),
    ],
    ["a/b", "..", null, null, null, null, null],
  );
});

Deno.test("sites named . and .. are reachable from the front page, with their JSON and badges", async () => {
  const front = await get("/");
  assertEquals(front.status, 200);
  const sites = links(front.text, /^\/sites\//).sort();
  assertEquals(sites, ["/sites/?name=.", "/sites/?name=..", "/sites/a%2Fb", "/sites/x%01y"]);
  for (const name of NAMES) {
    const page = await get(sitePath(name));
    assertEquals(page.status, 200, name);
    assertEquals(page.text.includes(`<h2 id="site-name"><bdi>${name}</bdi></h2>`), true, name);
    const [api] = links(page.text, /^\/api\/sites\//);
    const json = JSON.parse((await get(api!)).text);
    assertEquals([json.name, json.state], [name, "up"]);
    const [state, uptime] = links(page.text, /^\/badge\//);
    const shown = name.replace("\x01", "\ufffd");
    assertEquals(label((await get(state!)).text), `${shown}: up`);
    assertEquals(label((await get(uptime!)).text), "uptime 30d: 100%");
  }
  // The path form of `..` (what the links were before) is the front page to any URL parser.
  assertEquals(new URL(`${serve.base}/sites/%2E%2E`).pathname, "/");
  assertEquals((await get("/badge/...svg")).status, 200); // a segment with more than dots is a name
});

Deno.test("NUL in a site name is a 404, in a parameter a 400, and no error is logged", async () => {
  const notFound = "Cannot find site '%00'";
  const nul = (name: string) => `Cannot read parameter '${name}': expected text without NUL characters (%00)`;
  const cases: [string, number, string][] = [
    ["/sites/%00", 404, "text/html; charset=utf-8"],
    ["/sites/?name=%00", 404, "text/html; charset=utf-8"],
    ["/api/sites/%00", 404, JSON.stringify({ error: notFound })],
    ["/api/sites/?name=a%00", 404, JSON.stringify({ error: "Cannot find site 'a%00'" })],
    ["/badge/%00.svg", 404, "image/svg+xml; charset=utf-8"],
    ["/badge/%00/uptime.svg", 404, "image/svg+xml; charset=utf-8"],
    ["/?q=%00", 400, "text/html; charset=utf-8"],
    ["/api/sites?q=%00", 400, JSON.stringify({ error: nul("q") })],
    ["/api/incidents?site=%00", 400, JSON.stringify({ error: nul("site") })],
  ];
  for (const [path, status, expected] of cases) {
    const answer = await get(path);
    assertEquals(answer.status, status, path);
    if (expected.startsWith("{")) assertEquals(answer.text, expected + "\n", path);
    else assertEquals(answer.type, expected, path);
  }
  assertMatch((await get("/sites/%00")).text, /<p id="message">Cannot find site &#39;%00&#39;<\/p>/);
  assertMatch(
    (await get("/?q=%00")).text,
    /<p id="message">Cannot read parameter &#39;q&#39;: expected text/,
  );
  assertEquals(/ ERROR /.test(serve.process.stderr.text), false, serve.process.stderr.text);
});

Deno.test("badges are well-formed XML for a stored name with a control character and a 404", async () => {
  const outsideXml = /[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;
  for (
    const [path, status] of [["/badge/x%01y.svg", 200], ["/badge/nope%01%1B%EF%BF%BF.svg", 404]] as const
  ) {
    const badge = await get(path);
    assertEquals([badge.status, outsideXml.test(badge.text)], [status, false], path);
  }
  assertEquals(label((await get("/badge/x%01y.svg")).text), "x\ufffdy: up");
  assertEquals(
    label((await get("/badge/nope%01%1B%EF%BF%BF.svg")).text),
    "nope\ufffd\ufffd\ufffd: not found",
  );
});

Deno.test({
  name: "stop the server and drop the database",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { code, stderr } = await serve.stop();
    await db.drop();
    assertEquals(code, 0, stderr);
  },
});
