import type postgres from "postgres";
import { assertEquals } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate } from "../src/db/migrate.ts";
import type { Batch } from "../src/db/batch.ts";
import { writeBatch as write } from "../src/db/writer.ts";
import { connectDatabase } from "../src/db/connect.ts";
import { silentLogger } from "../src/log.ts";
import type { CheckResult } from "../src/message.ts";
import { HOUR, locationCheck } from "./_history_checks.ts";

/** A check of `site` from location `region` (agent `agent-<region>`), up unless `down`. */
function check(
  site: string,
  region: string,
  at: number,
  down = false,
  extra: Partial<CheckResult> = {},
): CheckResult {
  return locationCheck(site, region, at, {
    up: !down,
    status: down ? 503 : 200,
    ttfb_ms: 5,
    duration_ms: down ? 7 : 40,
    bytes: 10,
    error: down ? { kind: "http", message: "Status 503 is not in 200-399" } : null,
    ...extra,
  });
}

const offsets = new Map<string, number>();

/** The checks as the next batch of consumer group `group` (partition 0). */
function batch(group: string, checks: CheckResult[]): Batch {
  const first = offsets.get(group) ?? 0;
  offsets.set(group, first + checks.length);
  return {
    group,
    topic: "monitor.checks",
    checks: checks.map((c, i) => ({ partition: 0, offset: String(first + i), check: c })),
    deadLetters: [],
    progress: [{ partition: 0, firstOffset: String(first), nextOffset: String(first + checks.length) }],
  };
}

const iso = (value: unknown) => value instanceof Date ? value.toISOString() : value;
const isoAt = (ms: number) => new Date(ms).toISOString();

async function siteStatus(sql: postgres.Sql, site: string) {
  const [row] = await sql`
    select state, since, locations_up, locations_down, locations_stale, open_incident_started_at
    from site_status where site = ${site}`;
  return row === undefined ? null : Object.fromEntries(Object.entries(row).map(([k, v]) => [k, iso(v)]));
}

async function locations(sql: postgres.Sql, site: string) {
  const rows = await sql`
    select location, up, stale, since, checked_at, consecutive_failures, error_kind
    from location_status where site = ${site} order by location`;
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, iso(v)])));
}

async function incidents(sql: postgres.Sql, site: string) {
  const rows = await sql`
    select started_at, ended_at, worst_state, locations, first_error_kind
    from incidents where site = ${site} order by started_at`;
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, iso(v)])));
}

async function uptime(
  sql: postgres.Sql,
  site: string | null,
  from: number,
  to: number,
  bucket: string | null,
) {
  const rows = await sql`
    select site, bucket, checks::int, up_checks::int, uptime_percent::text
    from site_uptime(${site}, ${isoAt(from)}::timestamptz, ${isoAt(to)}::timestamptz, ${bucket}::interval)`;
  return rows.map((row) => [row.site, iso(row.bucket), row.checks, row.up_checks, row.uptime_percent]);
}

Deno.test("db history: locations, site state, incidents and uptime", async (t) => {
  const db = await createTestDatabase();
  const { sql } = db;
  // The writer runs on a connection made as the sink makes it (no array types fetched).
  const sink = await connectDatabase({ url: db.url, log: silentLogger });
  const writeBatch = (batch: Batch, options?: { now: Date }) => write(sink, batch, options);
  // Checks started in the past two hours, stored now: every location is fresh by the database's clock.
  const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
  try {
    await migrate(sql, silentLogger);

    await t.step("two locations disagreeing: degraded, per-location state exact, one incident", async () => {
      const checks: CheckResult[] = [];
      for (let i = 0; i < 10; i++) {
        checks.push(check("duo", "eu-west", base + i * 30_000));
        checks.push(check("duo", "us-east", base + i * 30_000 + 1000, true));
      }
      for (let i = 0; i < checks.length; i += 6) await writeBatch(batch("g1", checks.slice(i, i + 6)));
      assertEquals(await locations(sql, "duo"), [
        {
          location: "eu-west",
          up: true,
          stale: false,
          since: isoAt(base),
          checked_at: isoAt(base + 270_000),
          consecutive_failures: 0,
          error_kind: null,
        },
        {
          location: "us-east",
          up: false,
          stale: false,
          since: isoAt(base + 1000),
          checked_at: isoAt(base + 271_000),
          consecutive_failures: 10,
          error_kind: "http",
        },
      ]);
      assertEquals(await siteStatus(sql, "duo"), {
        state: "degraded",
        since: isoAt(base + 1000),
        locations_up: 1,
        locations_down: 1,
        locations_stale: 0,
        open_incident_started_at: isoAt(base + 1000),
      });
      assertEquals(await incidents(sql, "duo"), [{
        started_at: isoAt(base + 1000),
        ended_at: null,
        worst_state: "degraded",
        locations: ["us-east"],
        first_error_kind: "http",
      }]);
      // us-east recovers: the incident ends at that check, and the site is up from then.
      await writeBatch(batch("g1", [check("duo", "us-east", base + 301_000)]));
      assertEquals((await siteStatus(sql, "duo"))?.state, "up");
      assertEquals((await siteStatus(sql, "duo"))?.since, isoAt(base + 301_000));
      assertEquals((await incidents(sql, "duo"))[0]?.ended_at, isoAt(base + 301_000));
      assertEquals(await uptime(sql, "duo", base, base + HOUR, null), [[
        "duo",
        isoAt(base),
        21,
        11,
        "52.381",
      ]]);
      const perLocation = await sql`
        select location, checks::int, up_checks::int
        from location_uptime('duo', ${isoAt(base)}::timestamptz, ${isoAt(base + HOUR)}::timestamptz, null)`;
      assertEquals(perLocation.map((r) => [r.location, r.checks, r.up_checks]), [["eu-west", 10, 10], [
        "us-east",
        11,
        1,
      ]]);
    });

    await t.step("three locations: degraded, then down, then back up, as one incident", async () => {
      const at = (s: number) => base + s * 1000;
      const steps: [CheckResult[], string][] = [
        [[check("trio", "a", at(0)), check("trio", "b", at(1)), check("trio", "c", at(2))], "up"],
        [[check("trio", "b", at(30), true)], "degraded"],
        [[check("trio", "c", at(31), true)], "degraded"],
        [
          [check("trio", "a", at(60), true, { error: { kind: "timeout", message: "t" }, status: null })],
          "down",
        ],
        [[check("trio", "b", at(90))], "degraded"],
        [[check("trio", "a", at(91)), check("trio", "c", at(92))], "up"],
      ];
      for (const [checks, state] of steps) {
        await writeBatch(batch("g2", checks));
        assertEquals((await siteStatus(sql, "trio"))?.state, state);
      }
      assertEquals(await incidents(sql, "trio"), [{
        started_at: isoAt(at(30)),
        ended_at: isoAt(at(92)),
        worst_state: "down",
        locations: ["a", "b", "c"],
        first_error_kind: "http",
      }]);
      assertEquals((await locations(sql, "trio")).map((l) => [l.location, l.up, l.consecutive_failures]), [
        ["a", true, 0],
        ["b", true, 0],
        ["c", true, 0],
      ]);
    });

    await t.step("a location gone silent turns stale; a site with no fresh location is stale", async () => {
      const now = Date.now();
      const earlier = new Date(now - 10 * 60_000);
      // eu-west reported down 10 minutes ago (stored then), us-east reports up now.
      await writeBatch(batch("g3", [check("quiet", "eu-west", now - 600_000, true)]), { now: earlier });
      assertEquals((await incidents(sql, "quiet")).length, 1);
      await writeBatch(batch("g3", [check("quiet", "us-east", now - 1000)]), { now: new Date(now) });
      assertEquals(await siteStatus(sql, "quiet"), {
        state: "up",
        since: isoAt(now - 1000),
        locations_up: 1,
        locations_down: 0,
        locations_stale: 1,
        open_incident_started_at: null,
      });
      assertEquals((await locations(sql, "quiet")).map((l) => [l.location, l.up, l.stale]), [
        ["eu-west", false, true],
        ["us-east", true, false],
      ]);
      // Going silent is not an outage: the incident ended when the silent location stopped counting.
      assertEquals(await incidents(sql, "quiet"), [{
        started_at: isoAt(now - 600_000),
        ended_at: isoAt(now - 1000),
        worst_state: "down",
        locations: ["eu-west"],
        first_error_kind: "http",
      }]);
      await writeBatch(batch("g3", [check("gone", "eu-west", now - 600_000)]), { now: earlier });
      assertEquals(await siteStatus(sql, "gone"), {
        state: "stale",
        since: isoAt(now - 600_000 + 90_000),
        locations_up: 0,
        locations_down: 0,
        locations_stale: 1,
        open_incident_started_at: null,
      });
    });

    await t.step("a location whose clock is 5 minutes ahead moves only its own state", async () => {
      const skew = 5 * 60_000;
      await writeBatch(batch("g4", [check("skew", "accurate", base), check("skew", "ahead", base + skew)]));
      // The accurate location's later checks are still newer than its own state, whatever the other clock says.
      await writeBatch(batch("g4", [check("skew", "ahead", base + skew + 30_000, true)]));
      await writeBatch(batch("g4", [check("skew", "accurate", base + 30_000, true)]));
      await writeBatch(batch("g4", [check("skew", "accurate", base + 60_000)]));
      assertEquals((await locations(sql, "skew")).map((l) => [l.location, l.up, l.checked_at]), [
        ["accurate", true, isoAt(base + 60_000)],
        ["ahead", false, isoAt(base + skew + 30_000)],
      ]);
      assertEquals((await siteStatus(sql, "skew"))?.state, "degraded");
      await writeBatch(batch("g4", [check("skew", "ahead", base + skew + 60_000)]));
      assertEquals(await incidents(sql, "skew"), [{
        started_at: isoAt(base + skew + 30_000),
        ended_at: isoAt(base + skew + 60_000),
        worst_state: "down",
        locations: ["accurate", "ahead"],
        first_error_kind: "http",
      }]);
      assertEquals(await uptime(sql, "skew", base, base + HOUR, null), [[
        "skew",
        isoAt(base),
        6,
        4,
        "66.667",
      ]]);
    });

    await t.step("a late check changes no state and no incident, and is counted in uptime", async () => {
      await writeBatch(batch("g5", [check("late", "eu", base + 600_000)]));
      // One hour older than the location's latest check, and down.
      await writeBatch(batch("g5", [check("late", "eu", base + 600_000 - HOUR, true)]));
      assertEquals((await locations(sql, "late")).map((l) => [l.up, l.checked_at, l.consecutive_failures]), [
        [true, isoAt(base + 600_000), 0],
      ]);
      assertEquals(await incidents(sql, "late"), []);
      assertEquals(await uptime(sql, "late", base - HOUR, base + HOUR, null), [
        ["late", isoAt(base - HOUR), 2, 1, "50.000"],
      ]);
    });
  } finally {
    await sink.end();
    await db.drop();
  }
});
