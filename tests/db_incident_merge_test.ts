/**
 * A site's closed incidents never overlap (sql/0009_incidents_never_overlap.sql): a location whose results
 * arrive late opens an incident back in time, over one the other location already closed, and when it closes
 * the two become one row, as the `incidents` view promises ("one row per period a site was not up").
 */
import type postgres from "postgres";
import { assertEquals } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate } from "../src/db/migrate.ts";
import { writeBatch } from "../src/db/writer.ts";
import { silentLogger } from "../src/log.ts";
import type { CheckResult } from "../src/message.ts";
import { consecutiveBatches, locationCheck } from "./_history_checks.ts";

const MINUTE = 60_000;
/** The checks as the next batch (partition 0). */
const batch = consecutiveBatches();

function check(site: string, region: string, at: number, down = false): CheckResult {
  return locationCheck(site, region, at, {
    up: !down,
    status: down ? 503 : 200,
    error: down ? { kind: region === "eu" ? "timeout" : "http", message: `${region} failed` } : null,
  });
}

async function incidents(sql: postgres.Sql, site: string) {
  const rows = await sql<
    { started_at: Date; ended_at: Date | null; worst_state: string; locations: string[] }[]
  >`
    select started_at, ended_at, worst_state, locations, first_error_kind
    from incidents where site = ${site} order by started_at`;
  return rows.map((row) => ({
    ...row,
    started_at: row.started_at.toISOString(),
    ended_at: row.ended_at?.toISOString() ?? null,
  }));
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Site `site` seen from "us" and "eu" from `t0`; "us" fails during `usDown` (minutes after t0) while "eu" is
 * silent, and the sink's clock has moved on so that "eu" counts as stale; then "eu"'s results arrive. Returns
 * the sink's clock after "us" recovered.
 */
async function usOutageWhileEuSilent(
  sql: postgres.Sql,
  site: string,
  t0: number,
  usDown: readonly [number, number][],
  usUntil: number,
): Promise<number> {
  await writeBatch(sql, batch([check(site, "us", t0), check(site, "eu", t0)]), { now: new Date(t0) });
  let clock = t0;
  for (let minute = 1; minute <= usUntil; minute++) {
    const down = usDown.some(([from, to]) => minute >= from && minute < to);
    clock = t0 + minute * MINUTE;
    await writeBatch(sql, batch([check(site, "us", clock, down)]), { now: new Date(clock) });
  }
  return clock;
}

Deno.test("incidents: a location's late results over an outage the other location saw give one incident", async (t) => {
  const db = await createTestDatabase("monitor_incidents");
  const { sql } = db;
  const t0 = Math.floor(Date.now() / MINUTE) * MINUTE - 3 * 60 * MINUTE;
  try {
    await migrate(sql, silentLogger);

    await t.step("overlapping at both ends: from the first start to the last end, worst down", async () => {
      const clock = await usOutageWhileEuSilent(sql, "both", t0, [[10, 20]], 21);
      assertEquals((await incidents(sql, "both")).length, 1);
      // "eu" was down from minute 5 to minute 30, and its results arrive now, in one batch.
      const eu = [5, 15, 25].map((m) => check("both", "eu", t0 + m * MINUTE, true));
      eu.push(check("both", "eu", t0 + 30 * MINUTE));
      await writeBatch(sql, batch(eu), { now: new Date(clock + 1_000) });
      assertEquals(await incidents(sql, "both"), [{
        started_at: iso(t0 + 5 * MINUTE),
        ended_at: iso(t0 + 30 * MINUTE),
        worst_state: "down",
        locations: ["eu", "us"],
        first_error_kind: "timeout",
      }]);
    });

    await t.step(
      "open across batches, then closed inside the earlier one: the earlier one stands",
      async () => {
        const clock = await usOutageWhileEuSilent(sql, "inside", t0, [[10, 20]], 21);
        await writeBatch(sql, batch([check("inside", "eu", t0 + 12 * MINUTE, true)]), {
          now: new Date(clock + 1_000),
        });
        // Open while "eu" is down: the end of what it overlaps is still ahead of it.
        assertEquals((await incidents(sql, "inside")).map((i) => i.ended_at), [iso(t0 + 20 * MINUTE), null]);
        await writeBatch(sql, batch([check("inside", "eu", t0 + 15 * MINUTE)]), {
          now: new Date(clock + 2_000),
        });
        assertEquals(await incidents(sql, "inside"), [{
          started_at: iso(t0 + 10 * MINUTE),
          ended_at: iso(t0 + 20 * MINUTE),
          worst_state: "down",
          locations: ["eu", "us"],
          first_error_kind: "http",
        }]);
      },
    );

    await t.step("over two earlier incidents: one; one that only touches the next stays apart", async () => {
      const clock = await usOutageWhileEuSilent(sql, "two", t0, [[10, 20], [25, 28], [40, 45]], 46);
      assertEquals((await incidents(sql, "two")).length, 3);
      const eu = [check("two", "eu", t0 + 5 * MINUTE, true), check("two", "eu", t0 + 30 * MINUTE, true)];
      // Up at minute 40, where the third incident starts: touching is not overlapping.
      eu.push(check("two", "eu", t0 + 40 * MINUTE));
      await writeBatch(sql, batch(eu), { now: new Date(clock + 1_000) });
      assertEquals((await incidents(sql, "two")).map((i) => [i.started_at, i.ended_at, i.locations]), [
        [iso(t0 + 5 * MINUTE), iso(t0 + 40 * MINUTE), ["eu", "us"]],
        [iso(t0 + 40 * MINUTE), iso(t0 + 45 * MINUTE), ["us"]],
      ]);
    });
  } finally {
    await db.drop();
  }
});

Deno.test("incidents: the upgrade to 0009 merges the overlapping incidents already stored", async () => {
  const db = await createTestDatabase("monitor_incidents");
  const old = await Deno.makeTempDir();
  const t0 = Math.floor(Date.now() / MINUTE) * MINUTE - 3 * 60 * MINUTE;
  try {
    const sqlFolder = new URL("../sql/", import.meta.url);
    for (const entry of Deno.readDirSync(sqlFolder)) {
      if (entry.name < "0009") await Deno.copyFile(new URL(entry.name, sqlFolder), `${old}/${entry.name}`);
    }
    await migrate(db.sql, silentLogger, { directory: new URL(`file://${old}/`) });
    // What 0008's writer stored: "us" down from minute 10 to 20, then "eu"'s late results from 5 to 30; and a
    // site whose incidents only touch.
    await db
      .sql`insert into sites (name, url, first_seen, last_seen) select n, 'https://' || n || '.example/', now(), now() from unnest(array['old', 'apart']) n`;
    await db.sql`insert into locations (name) values ('us'), ('eu') on conflict do nothing`;
    await db.sql`
      insert into site_incidents (site_id, started_at, ended_at, worst_state, location_ids, first_error_kind)
      select s.id, t0 + m1 * interval '1 minute', t0 + m2 * interval '1 minute', w,
             array(select id from locations where name = l), k::check_error_kind
      from (values ('old', 10, 20, 'down', 'us', 'http'), ('old', 5, 30, 'degraded', 'eu', 'timeout'),
                   ('apart', 10, 20, 'down', 'us', 'http'), ('apart', 20, 30, 'down', 'us', 'http'))
             as v(site, m1, m2, w, l, k)
      join sites s on s.name = v.site
      cross join (select ${iso(t0)}::timestamptz as t0) t`;
    assertEquals((await incidents(db.sql, "old")).length, 2);
    await migrate(db.sql, silentLogger);
    assertEquals(
      (await incidents(db.sql, "old")).map((i) => [i.started_at, i.ended_at, i.worst_state, i.locations]),
      [
        [iso(t0 + 5 * MINUTE), iso(t0 + 30 * MINUTE), "down", ["eu", "us"]],
      ],
    );
  } finally {
    await Deno.remove(old, { recursive: true });
    await db.drop();
  }
});
