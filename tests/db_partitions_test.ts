import postgres from "postgres";
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate, MONITOR_LOCK_SPACE } from "../src/db/migrate.ts";
import { dailyPartition, maintainPartitions, PARTITIONS_LOCK } from "../src/db/partitions.ts";
import { maintainRollupPartitions } from "../src/db/rollup_partitions.ts";
import { writeBatch } from "../src/db/writer.ts";
import { silentLogger as log } from "../src/log.ts";
import type { CheckResult } from "../src/message.ts";

/** The partitions of `checks` with their bounds, printed in UTC. */
async function partitions(sql: postgres.Sql): Promise<string[]> {
  return await sql.begin(async (tx) => {
    await tx`set local timezone = 'UTC'`;
    const rows = await tx<{ name: string; bound: string }[]>`
      select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
      from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'checks'::regclass
      order by c.relname`;
    return rows.map((row) => `${row.name} ${row.bound}`);
  });
}

async function whereIs(sql: postgres.Sql, startedAt: string): Promise<string[]> {
  // Sent as text: postgres.js would send a timestamptz parameter through Date, dropping the microseconds.
  const rows = await sql<{ partition: string }[]>`
    select tableoid::regclass::text as partition from checks where started_at = ${startedAt}::text::timestamptz`;
  return rows.map((row) => row.partition);
}

function check(id: number, startedAt: string): CheckResult {
  return {
    v: 1,
    id: `01937a00-0000-7000-8000-${id.toString().padStart(12, "0")}`,
    site: "example",
    url: "https://example.com/",
    agent: "probe-1",
    region: null,
    scheduled_at: startedAt,
    started_at: startedAt,
    up: true,
    status: 200,
    ttfb_ms: 10,
    duration_ms: 20,
    bytes: 100,
    regex: null,
    regex_matched: null,
    cert_expires_at: null,
    error: null,
    interval_ms: 60_000,
  };
}

let nextOffset = 0;
async function store(sql: postgres.Sql, ...checks: CheckResult[]): Promise<void> {
  const first = nextOffset;
  await writeBatch(sql, {
    group: "partitions-test",
    topic: "monitor.checks",
    checks: checks.map((c) => ({ partition: 0, offset: String(nextOffset++), check: c })),
    deadLetters: [],
    progress: [{ partition: 0, firstOffset: String(first), nextOffset: String(nextOffset) }],
  });
}

Deno.test("dailyPartition() names the UTC day of a time and bounds it", () => {
  assertEquals(dailyPartition(new Date("2026-11-23T23:59:59.999Z")), {
    name: "checks_p20261123",
    from: "2026-11-23T00:00:00Z",
    to: "2026-11-24T00:00:00Z",
  });
  assertEquals(dailyPartition(new Date("2028-02-28T05:00:00Z")).to, "2028-02-29T00:00:00Z");
  assertThrows(
    () => dailyPartition(new Date(NaN)),
    RangeError,
    "Cannot name a partition: the date is invalid",
  );
  assertThrows(
    () => dailyPartition(new Date("9999-12-31T12:00:00Z")),
    RangeError,
    "Cannot name a partition: the date is out of range: 9999-12-31",
  );
});

Deno.test("db partitions", async (t) => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await migrate(sql, log);

    await t.step(
      "maintainPartitions() creates daily partitions from yesterday through aheadDays",
      async () => {
        const now = new Date("2026-11-23T10:00:00Z");
        assertEquals(await maintainPartitions(sql, { now, aheadDays: 2, log }), {
          locked: true,
          created: ["checks_p20261122", "checks_p20261123", "checks_p20261124", "checks_p20261125"],
          dropped: [],
          movedRows: 0,
          expiredRows: 0,
        });
        assertEquals(await partitions(sql), [
          "checks_default DEFAULT",
          "checks_p20261122 FOR VALUES FROM ('2026-11-22 00:00:00+00') TO ('2026-11-23 00:00:00+00')",
          "checks_p20261123 FOR VALUES FROM ('2026-11-23 00:00:00+00') TO ('2026-11-24 00:00:00+00')",
          "checks_p20261124 FOR VALUES FROM ('2026-11-24 00:00:00+00') TO ('2026-11-25 00:00:00+00')",
          "checks_p20261125 FOR VALUES FROM ('2026-11-25 00:00:00+00') TO ('2026-11-26 00:00:00+00')",
        ]);
        assertEquals(await maintainPartitions(sql, { now, aheadDays: 2, log }), {
          locked: true,
          created: [],
          dropped: [],
          movedRows: 0,
          expiredRows: 0,
        });
        await store(sql, check(1, "2026-11-23T00:00:00Z"), check(2, "2026-11-22T23:59:59.999999Z"));
        assertEquals(await whereIs(sql, "2026-11-23T00:00:00Z"), ["checks_p20261123"]);
        assertEquals(await whereIs(sql, "2026-11-22T23:59:59.999999Z"), ["checks_p20261122"]);
      },
    );

    await t.step("maintainPartitions() drops partitions whose whole range is past retention", async () => {
      // 2026-11-23T10:00Z - 2 days = 2026-11-21T10:00Z: no partition ends before it yet.
      assertEquals(
        (await maintainPartitions(sql, {
          now: new Date("2026-11-23T10:00:00Z"),
          aheadDays: 2,
          retentionDays: 2,
          log,
        }))
          .dropped,
        [],
      );
      // 2026-11-25T00:00Z - 2 days = 2026-11-23T00:00Z: the partition of 11-22 ends exactly then.
      const report = await maintainPartitions(sql, {
        now: new Date("2026-11-25T00:00:00Z"),
        aheadDays: 1,
        retentionDays: 2,
        log,
      });
      assertEquals(report, {
        locked: true,
        created: ["checks_p20261126"],
        dropped: ["checks_p20261122"],
        movedRows: 0,
        expiredRows: 0,
      });
      assertEquals(await whereIs(sql, "2026-11-22T23:59:59.999999Z"), []);
      assertEquals(await whereIs(sql, "2026-11-23T00:00:00Z"), ["checks_p20261123"]);
      // retentionDays 0 keeps everything, however old.
      const keep = await maintainPartitions(sql, {
        now: new Date("2026-11-25T00:00:00Z"),
        aheadDays: 1,
        retentionDays: 0,
        log,
      });
      assertEquals([keep.created, keep.dropped], [[], []]);
    });

    await t.step(
      "a check outside the prepared range is stored in the default partition, then moved",
      async () => {
        await store(sql, check(10, "2035-01-01T12:00:00Z"), check(11, "2001-05-05T00:00:00Z"));
        assertEquals(await whereIs(sql, "2035-01-01T12:00:00Z"), ["checks_default"]);
        assertEquals(await whereIs(sql, "2001-05-05T00:00:00Z"), ["checks_default"]);
        const report = await maintainPartitions(sql, {
          now: new Date("2035-01-01T06:00:00Z"),
          aheadDays: 0,
          retentionDays: 0,
          log,
        });
        assertEquals(report, {
          locked: true,
          created: ["checks_p20341231", "checks_p20350101"],
          dropped: [],
          movedRows: 1,
          expiredRows: 0,
        });
        assertEquals(await whereIs(sql, "2035-01-01T12:00:00Z"), ["checks_p20350101"]);
        assertEquals(await whereIs(sql, "2001-05-05T00:00:00Z"), ["checks_default"]);
        // The moved row keeps its identity: storing it again is a duplicate.
        const again = await writeBatch(sql, {
          group: "partitions-test",
          topic: "monitor.checks",
          checks: [{ partition: 0, offset: String(nextOffset), check: check(10, "2035-01-01T12:00:00Z") }],
          deadLetters: [],
          progress: [{ partition: 0, firstOffset: String(nextOffset), nextOffset: String(++nextOffset) }],
        });
        assertEquals([again.stored, again.duplicates], [0, 1]);
      },
    );

    await t.step("maintainPartitions() deletes expired rows from the default partition", async () => {
      const report = await maintainPartitions(sql, {
        now: new Date("2035-01-01T06:00:00Z"),
        aheadDays: 0,
        retentionDays: 90,
        log,
      });
      assertEquals(report, {
        locked: true,
        created: [],
        dropped: ["checks_p20261123", "checks_p20261124", "checks_p20261125", "checks_p20261126"],
        movedRows: 0,
        expiredRows: 1,
      });
      assertEquals(await whereIs(sql, "2001-05-05T00:00:00Z"), []);
      assertEquals(await partitions(sql), [
        "checks_default DEFAULT",
        "checks_p20341231 FOR VALUES FROM ('2034-12-31 00:00:00+00') TO ('2035-01-01 00:00:00+00')",
        "checks_p20350101 FOR VALUES FROM ('2035-01-01 00:00:00+00') TO ('2035-01-02 00:00:00+00')",
      ]);
    });

    await t.step("maintainPartitions() does nothing while another process holds its lock", async () => {
      await sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${MONITOR_LOCK_SPACE}, ${PARTITIONS_LOCK})`;
        const report = await maintainPartitions(sql, { now: new Date("2035-03-01T00:00:00Z"), log });
        assertEquals(report, { locked: false, created: [], dropped: [], movedRows: 0, expiredRows: 0 });
      });
    });

    await t.step("two maintainers at once create each partition once", async () => {
      const other = postgres(db.url, { max: 2, onnotice: () => {} });
      try {
        const now = new Date("2035-06-10T00:00:00Z");
        const reports = await Promise.all([
          maintainPartitions(sql, { now, aheadDays: 1, retentionDays: 0, log }),
          maintainPartitions(other, { now, aheadDays: 1, retentionDays: 0, log }),
        ]);
        assertEquals(reports.flatMap((r) => r.created).sort(), [
          "checks_p20350609",
          "checks_p20350610",
          "checks_p20350611",
        ]);
      } finally {
        await other.end();
      }
    });

    await t.step("maintainPartitions() rejects invalid options before any work", async () => {
      await assertRejects(
        () => maintainPartitions(sql, { aheadDays: -1, log }),
        RangeError,
        "Cannot maintain partitions as 'aheadDays' must be an integer from 0 to 36500: current value is -1",
      );
      await assertRejects(
        () => maintainPartitions(sql, { retentionDays: 1.5, log }),
        RangeError,
        "Cannot maintain partitions as 'retentionDays' must be an integer from 0 to 36500: current value is 1.5",
      );
      await assertRejects(
        () => maintainPartitions(sql, { now: new Date("nope"), log }),
        RangeError,
        "Cannot maintain partitions as 'now' is an invalid date",
      );
    });
  } finally {
    await db.drop();
  }
});

Deno.test("raw and rollup partition maintenance refuse a lock timeout that is not a positive integer", async () => {
  const sql = postgres("postgres://127.0.0.1:1/unused", { max: 1, connect_timeout: 1 });
  try {
    for (const lockTimeoutMs of [0, 1.5, -1]) {
      const message =
        `Cannot maintain partitions as 'lockTimeoutMs' must be a positive integer: current value is ${lockTimeoutMs}`;
      await assertRejects(() => maintainPartitions(sql, { lockTimeoutMs, log }), RangeError, message);
      await assertRejects(() => maintainRollupPartitions(sql, { lockTimeoutMs, log }), RangeError, message);
    }
  } finally {
    await sql.end({ timeout: 0 });
  }
});
