/**
 * The read functions over what the sink stores (sql/0008_bounded_reports.sql): a one-bucket range bounded by
 * what is stored, calendar days in UTC whatever the session's time zone, and a late check into a day older
 * than the prefix sums an upgrade computed.
 */
import postgres from "postgres";
import { assertEquals } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate } from "../src/db/migrate.ts";
import { writeBatch } from "../src/db/writer.ts";
import { silentLogger } from "../src/log.ts";
import type { CheckResult } from "../src/message.ts";
import { consecutiveBatches, DAY, HOUR, locationCheck } from "./_history_checks.ts";

/** The checks as the next batch (partition 0). */
const batch = consecutiveBatches();

/** A check of "shop" from "eu" every `stepMs` in [from, to), down in the hours `down` says. */
function checksEvery(from: number, to: number, stepMs: number, down = (_at: number) => false): CheckResult[] {
  const checks = [];
  for (let at = from; at < to; at += stepMs) {
    checks.push(
      locationCheck(
        "shop",
        "eu",
        at,
        down(at) ? { up: false, status: 503, error: { kind: "http", message: "503" } } : {},
      ),
    );
  }
  return checks;
}

const checksOf = (rows: readonly postgres.Row[]) => rows.map((row) => Number(row.checks));

Deno.test("site_uptime() over one bucket: an infinite end is refused with 22023, and a range from year 1 reads only the stored months", async () => {
  const db = await createTestDatabase("monitor_bounds");
  try {
    await migrate(db.sql, silentLogger);
    const today = Math.floor(Date.now() / DAY) * DAY;
    await writeBatch(db.sql, batch(checksEvery(today - 3 * DAY, today - DAY, HOUR)), {
      now: new Date(today),
    });
    // A guard: before the fix, '-infinity' grew the backend's memory until the server was out of it.
    const guarded = postgres(db.url, {
      max: 1,
      onnotice: () => {},
      connection: { statement_timeout: 20_000 },
    });
    try {
      for (const [from, to] of [["-infinity", "now"], ["2026-01-01", "infinity"]]) {
        const error = await guarded`
          select * from site_uptime('shop', ${from!}::text::timestamptz, ${to!}::text::timestamptz, null)`
          .then(() => null, (error: postgres.PostgresError) => error);
        assertEquals(
          [error?.code, error?.message.endsWith("as one bucket: both ends must be finite times")],
          [
            "22023",
            true,
          ],
        );
      }
      const fromYearOne = await guarded`
        select checks from site_uptime('shop', '0001-01-01T00:00:00Z', ${new Date(today)}, null)`;
      const fromItsDays = await guarded`
        select checks from site_uptime('shop', ${new Date(today - 3 * DAY)}, ${new Date(today)}, null)`;
      assertEquals([checksOf(fromYearOne), checksOf(fromItsDays)], [[48], [48]]);
    } finally {
      await guarded.end();
    }
  } finally {
    await db.drop();
  }
});

Deno.test("site_uptime() by day, week and month, and site_daily_bars(), answer the same in a New York session as in UTC", async () => {
  const db = await createTestDatabase("monitor_bounds");
  try {
    await migrate(db.sql, silentLogger);
    // Every 15 min from 2026-10-29 to 11-05, down on 11-02. New York leaves daylight saving time on 11-01: from
    // a range starting 11-02, a calendar day added in New York time to its day's start (11-01) crosses it.
    const down = (at: number) => at >= Date.UTC(2026, 10, 2) && at < Date.UTC(2026, 10, 3);
    const checks = checksEvery(Date.UTC(2026, 9, 29), Date.UTC(2026, 10, 5), 15 * 60_000, down);
    await writeBatch(db.sql, batch(checks), { now: new Date(Date.UTC(2026, 10, 5)) });
    await db.sql.unsafe(`alter database "${db.name}" set timezone = 'America/New_York'`);
    const read = async (connection: Record<string, string>) => {
      const sql = postgres(db.url, { max: 1, onnotice: () => {}, connection });
      try {
        const result: unknown[] = [];
        for (const width of ["1 day", "1 week", "1 month"]) {
          const rows = await sql`
            select bucket, checks::int, up_checks::int from site_uptime('shop', '2026-11-02T00:00:00Z',
              '2026-11-04T00:00:00Z', ${width}::interval)`;
          result.push(rows.map((row) => [(row.bucket as Date).toISOString(), row.checks, row.up_checks]));
        }
        const [bars] = await sql`select first_day, uptime_percent from site_daily_bars(400)`;
        const figures = (bars!.uptime_percent as (string | null)[]).filter((figure) =>
          figure !== null && figure !== "NULL"
        );
        result.push([(bars!.first_day as Date).toISOString().slice(11), figures]);
        return result;
      } finally {
        await sql.end();
      }
    };
    const [utc, newYork] = [await read({ TimeZone: "UTC" }), await read({})];
    assertEquals(newYork, utc);
    assertEquals(utc[0], [["2026-11-02T00:00:00.000Z", 96, 0], ["2026-11-03T00:00:00.000Z", 96, 96]]);
    assertEquals(utc[3], ["00:00:00.000Z", [
      "100.000",
      "100.000",
      "100.000",
      "100.000",
      "0.000",
      "100.000",
      "100.000",
    ]]);
  } finally {
    await db.drop();
  }
});

Deno.test("a late check into a day older than the prefix sums an upgrade from 0005 computed: one bucket counts as by hour", async () => {
  const db = await createTestDatabase("monitor_bounds");
  const old = await Deno.makeTempDir();
  try {
    const sqlFolder = new URL("../sql/", import.meta.url);
    for (const entry of Deno.readDirSync(sqlFolder)) {
      if (entry.name < "0006") await Deno.copyFile(new URL(entry.name, sqlFolder), `${old}/${entry.name}`);
    }
    await migrate(db.sql, silentLogger, { directory: new URL(`file://${old}/`) });
    const now = Date.now();
    const day = Math.floor(now / DAY) * DAY - 40 * DAY;
    // A check every 10 minutes that day (72), written as it happened, then the upgrade.
    for (let hour = 0; hour < 24; hour++) {
      const at = day + hour * HOUR;
      await writeBatch(db.sql, batch(checksEvery(at, at + HOUR, 20 * 60_000)), { now: new Date(at + HOUR) });
    }
    await migrate(db.sql, silentLogger);
    await writeBatch(db.sql, batch([locationCheck("shop", "eu", day + 20 * HOUR + 5 * 60_000)]), {
      now: new Date(now),
    });
    for (const from of [day + 12 * HOUR, day + 21 * HOUR]) {
      const [oneBucket] = await db.sql`
        select checks::int from site_uptime('shop', ${new Date(from)}, ${new Date(day + 2 * DAY)}, null)`;
      const [byHour] = await db.sql`
        select sum(checks)::int as checks from site_uptime('shop', ${new Date(from)}, ${new Date(
        day + 2 * DAY,
      )})`;
      const [raw] = await db.sql`
        select count(*)::int as checks from checks where started_at >= ${new Date(from)}
          and started_at < ${new Date(day + 2 * DAY)}`;
      assertEquals(
        [oneBucket!.checks, byHour!.checks],
        [raw!.checks, raw!.checks],
        `from ${new Date(from).toISOString()}`,
      );
    }
  } finally {
    await Deno.remove(old, { recursive: true });
    await db.drop();
  }
});
