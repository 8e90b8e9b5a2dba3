/**
 * `monitor status` against a database filled through the writer: the exact table when piped, JSON, one site's
 * detail, --watch, colour, and exit codes (0 only when every site shown is up).
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { runMonitor, startMonitor, waitFor } from "./_cli.ts";
import { createTestDatabase } from "./_pg.ts";
import { fillServeDatabase, HOSTILE, HOSTILE_ERROR } from "./_serve_data.ts";
import { oneLine, statusTable, terminalJson } from "../src/serve/status_table.ts";
import { formatUtc } from "../src/serve/format.ts";

const MINUTE = 60_000;
const t = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
const ago = (minutes: number) => formatUtc(new Date(t.getTime() - minutes * MINUTE));

const db = await createTestDatabase("monitor_status");
await fillServeDatabase(db.sql, t);
const upOnly = await createTestDatabase("monitor_status_up");
await fillServeDatabase(upOnly.sql, t, ["alpha"]);

Deno.test("status prints every site as a plain table when piped and exits 1 when a site is not up", async () => {
  const { code, stdout, stderr } = await runMonitor(["status"], { DATABASE_URL: db.url });
  assertEquals([code, stderr], [1, ""]);
  assertEquals(
    stdout,
    [
      "SITE                       STATE     SINCE                 UPTIME 24H  UPTIME 30D  P95 24H  OPEN INCIDENT",
      `beta                       degraded  ${ago(10)}  76.92%      76.92%      77.3 ms  degraded since ${
        ago(10)
      }`,
      `${HOSTILE}  stale     ${ago(40)}  100%        100%        19.4 ms  -`,
      `alpha                      up        ${ago(50)}  100%        100%        195 ms   -`,
      "",
      "3 sites: 1 up, 1 degraded, 0 down, 1 stale",
      "",
    ].join("\n"),
  );
});

Deno.test("status exits 0 when every site is up", async () => {
  const { code, stdout } = await runMonitor(["status"], { DATABASE_URL: upOnly.url });
  assertEquals(code, 0);
  assertMatch(stdout, /\n1 site: 1 up, 0 degraded, 0 down, 0 stale\n$/);
});

Deno.test("status --json gives the sites as /api/sites does", async () => {
  const { code, stdout } = await runMonitor(["status", "--json"], { DATABASE_URL: db.url });
  assertEquals(code, 1);
  const body = JSON.parse(stdout);
  assertEquals(body.counts, { up: 1, degraded: 1, down: 0, stale: 1 });
  assertEquals(
    body.sites.map((s: Record<string, unknown>) => [s.name, s.state, s.uptime, s.p95_ms_24h]),
    [
      ["beta", "degraded", { "24h": 76.923, "7d": 76.923, "30d": 76.923 }, 77.3],
      [HOSTILE, "stale", { "24h": 100, "7d": 100, "30d": 100 }, 19.4],
      ["alpha", "up", { "24h": 100, "7d": 100, "30d": 100 }, 194.8],
    ],
  );
});

Deno.test("status --site shows each location and the incidents, one line each", async () => {
  const { code, stdout } = await runMonitor(["status", "--site", "beta"], { DATABASE_URL: db.url });
  assertEquals(code, 1);
  const lines = stdout.split("\n");
  assertEquals(lines.slice(0, 5), [
    "beta  https://beta.example.test/",
    lines[1],
    "uptime:    24h 76.92%, 7d 76.92%, 30d 76.92%; p95 24h 77.3 ms",
    `incident:  degraded since ${ago(10)}`,
    "",
  ]);
  // The state began 10 minutes before `t`; on a busy machine this test may run a minute or more after `t`.
  const shown = lines[1]!.match(
    new RegExp(`^state:     degraded since ${ago(10)} \\((\\d+) min( \\d+ s)?\\)$`),
  );
  const minutesNow = Math.floor((Date.now() - t.getTime()) / MINUTE) + 10;
  assertEquals(shown !== null && Number(shown[1]) >= 10 && Number(shown[1]) <= minutesNow, true, lines[1]);
  assertEquals(lines.slice(5, 8), [
    "LOCATION  STATE  SINCE                 LAST CHECK            FAILURES  STATUS  ERROR",
    `eu-west   up     ${ago(50)}  ${ago(1)}  0         200     -`,
    `us-east   down   ${ago(10)}  ${ago(1)}  2         503     http: ${HOSTILE_ERROR}`,
  ]);
  assertMatch(stdout, new RegExp(`\\nSTARTED +ENDED +DURATION +WORST +CAUSE\\n${ago(10)}  ongoing  `));
  const alpha = await runMonitor(["status", "--site", "alpha", "--json"], { DATABASE_URL: db.url });
  assertEquals([alpha.code, JSON.parse(alpha.stdout).state], [0, "up"]);
  const missing = await runMonitor(["status", "--site", "nope"], { DATABASE_URL: db.url });
  assertEquals(missing, {
    code: 1,
    stdout: "",
    stderr: "monitor status: Cannot show site 'nope': there is no such site in the database\n",
  });
});

Deno.test("status without a database URL is a usage error", async () => {
  const { code, stderr } = await runMonitor(["status"]);
  assertEquals(code, 2);
  assertMatch(
    stderr,
    /^monitor status: Cannot connect to the database: set '--database-url' or DATABASE_URL\n/,
  );
});

Deno.test("status --watch redraws until interrupted and exits with the last drawing's code", async () => {
  const watch = startMonitor(["status", "--watch", "--every", "1s"], { DATABASE_URL: db.url });
  let stdout = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of watch.child.stdout) stdout += decoder.decode(chunk, { stream: true });
  })();
  await waitFor(() => (stdout.match(/monitor status, every 1 s/g)?.length ?? 0) >= 2, 20_000, "two drawings");
  watch.child.kill("SIGINT");
  const status = await watch.child.status;
  await reading;
  assertEquals(status.code, 1);
  assertEquals(stdout.includes("\x1b[2J"), false);
  assertMatch(stdout, /3 sites: 1 up, 1 degraded, 0 down, 1 stale\n/);
});

Deno.test("the table is coloured by state on a terminal", () => {
  const at = new Date("2026-11-30T06:00:00Z");
  const site = (name: string, state: "up" | "down") => ({
    name,
    url: "http://x/",
    state,
    since: at,
    locationsUp: 1,
    locationsDown: 0,
    locationsStale: 0,
    openIncident: null,
  });
  const text = statusTable([site("a", "up"), site("b\x1b[31m", "down")], new Map(), true);
  assertEquals(
    text.split("\n")[1],
    `a       \x1b[32mup   \x1b[0m  2026-11-30 06:00 UTC  –           –           –        -`,
  );
  assertEquals(text.split("\n")[2]!.startsWith("b [31m  \x1b[31mdown \x1b[0m"), true);
  assertEquals(text.split("\n")[0]!.startsWith("\x1b[1mSITE"), true);
});

Deno.test("status --every shorter than 1s is a usage error naming the flag and the minimum", async () => {
  for (const every of ["0ms", "1ms", "999ms"]) {
    const result = await runMonitor(["status", "--watch", "--every", every], { DATABASE_URL: db.url });
    assertEquals(result, {
      code: 2,
      stdout: "",
      stderr: `monitor status: Cannot use flag '--every': expected at least 1s: got '${every}'\n` +
        "Run 'monitor status --help' for usage.\n",
    });
  }
});

Deno.test("the table sends a terminal no C0 or C1 controls, line separators or bidi controls", () => {
  assertEquals(oneLine("a\x00b\x1b[2Jc\x7fd\x9b31me\x85f"), "a b [2Jc d 31me f");
  assertEquals(oneLine("gut\u202eevil\u202c\u2066x\u2069\u2028y\u2029z"), "gut evil x y z");
  assertEquals(oneLine("a\u200eb\u200fc\u061cd"), "a b c d");
  assertEquals(terminalJson(JSON.stringify("a\u200eb\u061c")), '"a\\u200eb\\u061c"');
  assertEquals(oneLine("café 🚀 \u05e9\u05dc\u05d5\u05dd"), "café 🚀 \u05e9\u05dc\u05d5\u05dd");
  const at = new Date("2026-11-30T06:00:00Z");
  const site = {
    name: "shop\x9b2J\u202e",
    url: "http://x/",
    state: "up" as const,
    since: at,
    locationsUp: 1,
    locationsDown: 0,
    locationsStale: 0,
    openIncident: null,
  };
  const text = statusTable([site], new Map(), false);
  assertEquals(/[\p{Cc}\u202a-\u202e]/u.test(text.replaceAll("\n", "")), false, text);
  // JSON keeps the value, written as escapes a terminal shows as text.
  const json = terminalJson(JSON.stringify({ name: site.name, x: "\x01" }, null, 2));
  assertEquals([json, JSON.parse(json).name], [
    '{\n  "name": "shop\\u009b2J\\u202e",\n  "x": "\\u0001"\n}',
    site.name,
  ]);
});

Deno.test({
  name: "drop the databases",
  sanitizeResources: false,
  fn: async () => {
    await db.drop();
    await upOnly.drop();
  },
});
