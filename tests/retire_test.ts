/**
 * `monitor retire --site NAME`: a site no longer probed leaves the current state (site_status, hence the status
 * page, `monitor status` and /metrics), its open incident closed; its history stays; a later check brings it back.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { runMonitor } from "./_cli.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate } from "../src/db/migrate.ts";
import { writeBatch } from "../src/db/writer.ts";
import { silentLogger } from "../src/log.ts";
import { consecutiveBatches, locationCheck } from "./_history_checks.ts";

/** The checks as the next batch (partition 0). */
const batch = consecutiveBatches();

const down = { up: false, status: 503, error: { kind: "http" as const, message: "Status 503" } };

Deno.test("monitor retire --site: the site leaves the current state, its incident closed, its history kept", async () => {
  const db = await createTestDatabase("monitor_retire");
  const { sql } = db;
  const now = Date.now();
  try {
    await migrate(sql, silentLogger);
    await writeBatch(
      sql,
      batch([
        locationCheck("kept", "eu", now - 60_000),
        locationCheck("gone", "eu", now - 60_000),
        locationCheck("gone", "us", now - 60_000),
        locationCheck("gone", "eu", now - 30_000, down),
      ]),
    );
    const states = async () =>
      (await sql<{ site: string; state: string }[]>`select site, state from site_status order by site`)
        .map((row) => `${row.site}:${row.state}`);
    assertEquals(await states(), ["gone:degraded", "kept:up"]);

    const retired = await runMonitor(["retire", "--site", "gone", "--database-url", db.url]);
    assertEquals(retired.code, 0, retired.stderr);
    assertMatch(retired.stderr, /site retired.*site=gone locations=2 closed_incident=true/);
    assertEquals(await states(), ["kept:up"]);
    const [incident] = await sql<
      { open: boolean }[]
    >`select ended_at is null as open from incidents where site = 'gone'`;
    assertEquals(incident?.open, false);
    const [{ count }] = await sql<[{ count: number }]>`
      select count(*)::int as count from checks c join sites s on s.id = c.site_id where s.name = 'gone'`;
    assertEquals(count, 3);

    const again = await runMonitor(["retire", "--site", "gone", "--database-url", db.url]);
    assertEquals(again.code, 0, again.stderr);
    assertMatch(again.stderr, /nothing to retire/);

    const unknown = await runMonitor(["retire", "--site", "never", "--database-url", db.url]);
    assertEquals(unknown.code, 2);
    assertMatch(unknown.stderr, /Cannot retire site 'never': the database has no site of that name/);
    const missing = await runMonitor(["retire", "--database-url", db.url]);
    assertEquals(missing.code, 2);
    assertMatch(missing.stderr, /flag '--site' \(or MONITOR_RETIRE_SITE\) is required/);

    // Probed again: back, with the state of its new check.
    await writeBatch(sql, batch([locationCheck("gone", "us", now)]));
    assertEquals(await states(), ["gone:up", "kept:up"]);
  } finally {
    await db.drop();
  }
});
