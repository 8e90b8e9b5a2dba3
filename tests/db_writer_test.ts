import postgres from "postgres";
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate } from "../src/db/migrate.ts";
import { timestampMicros } from "../src/db/_values.ts";
import { type Batch, type DeadLetter, OffsetGap } from "../src/db/batch.ts";
import { readOffsets, writeBatch } from "../src/db/writer.ts";
import { silentLogger } from "../src/log.ts";
import type { CheckResult } from "../src/message.ts";

const uuid = (n: number) => `01937a00-0000-7000-8000-${n.toString().padStart(12, "0")}`;

/** An up check of `site` with every field set; `overrides` change it. */
function check(
  site: string,
  id: number,
  startedAt: string,
  overrides: Partial<CheckResult> = {},
): CheckResult {
  return {
    v: 1,
    id: uuid(id),
    site,
    url: `https://${site}.example/`,
    agent: "probe-1",
    region: "eu",
    scheduled_at: startedAt,
    started_at: startedAt,
    up: true,
    status: 200,
    ttfb_ms: 12.5,
    duration_ms: 40.25,
    bytes: 512,
    regex: null,
    regex_matched: null,
    cert_expires_at: null,
    error: null,
    interval_ms: 60_000,
    ...overrides,
  };
}

function down(
  site: string,
  id: number,
  startedAt: string,
  overrides: Partial<CheckResult> = {},
): CheckResult {
  return check(site, id, startedAt, {
    up: false,
    status: null,
    ttfb_ms: null,
    bytes: null,
    duration_ms: 10000,
    error: { kind: "timeout", message: "no response within 10000 ms" },
    ...overrides,
  });
}

/** A batch of one partition: the checks then the dead letters take consecutive offsets from `first`. */
function batch(
  group: string,
  partition: number,
  first: number,
  checks: CheckResult[],
  deadLetters: Omit<DeadLetter, "partition" | "offset">[] = [],
): Batch {
  let offset = first;
  return {
    group,
    topic: "monitor.checks",
    checks: checks.map((c) => ({ partition, offset: String(offset++), check: c })),
    deadLetters: deadLetters.map((d) => ({ ...d, partition, offset: String(offset++) })),
    progress: [{ partition, firstOffset: String(first), nextOffset: String(offset) }],
  };
}

const iso = (value: Date | null) => value === null ? null : value.toISOString();

type Row = Record<string, unknown>;

async function checkRows(sql: postgres.Sql, site: string): Promise<Row[]> {
  const rows = await sql<(Row & { scheduled_at: Date; started_at: Date; cert_expires_at: Date | null })[]>`
    select c.id::text, s.name as site, a.name as agent, a.region, c.scheduled_at, c.started_at, c.up, c.status,
           c.ttfb_ms, c.duration_ms, c.bytes, c.regex_matched, c.cert_expires_at, c.error_kind, c.error_message
    from checks c join sites s on s.id = c.site_id join agents a on a.id = c.agent_id
    where s.name = ${site}
    order by c.started_at, c.id`;
  return rows.map((r) => ({
    ...r,
    scheduled_at: iso(r.scheduled_at),
    started_at: iso(r.started_at),
    cert_expires_at: iso(r.cert_expires_at),
  }));
}

/** The latest state of one location of a site (location "eu", the region of check()'s agent, by default). */
async function statusOf(sql: postgres.Sql, site: string, location = "eu"): Promise<Row | null> {
  const [row] = await sql<(Row & { checked_at: Date; state_since: Date })[]>`
    select check_id::text, checked_at, agent, up, status, since as state_since, consecutive_failures, error_kind,
           error_message, duration_ms
    from location_status where site = ${site} and location = ${location}`;
  return row === undefined
    ? null
    : { ...row, checked_at: iso(row.checked_at), state_since: iso(row.state_since) };
}

async function siteRow(sql: postgres.Sql, site: string): Promise<Row | null> {
  const [row] = await sql<(Row & { first_seen: Date; last_seen: Date })[]>`
    select name, url, regex, first_seen, last_seen from sites where name = ${site}`;
  return row === undefined
    ? null
    : { ...row, first_seen: iso(row.first_seen), last_seen: iso(row.last_seen) };
}

const count = async (sql: postgres.Sql, site: string) =>
  (await sql<{ n: number }[]>`
    select count(*)::int as n from checks c join sites s on s.id = c.site_id where s.name = ${site}`)[0]!.n;

Deno.test("db writer", async (t) => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await migrate(sql, silentLogger);

    await t.step(
      "writeBatch() stores exact rows in checks, sites, agents, location_state and offsets",
      async () => {
        const a1 = check("alpha", 1, "2026-11-20T10:00:00.000Z", {
          regex: "Welcome",
          regex_matched: true,
          cert_expires_at: "2027-01-01T00:00:00Z",
        });
        const a2 = check("alpha", 2, "2026-11-20T10:01:00.250Z", {
          agent: "probe-2",
          region: null,
          up: false,
          status: 503,
          ttfb_ms: 5,
          duration_ms: 7.5,
          bytes: 0,
          regex: "Welcome",
          regex_matched: false,
          error: { kind: "http", message: "status 503 is not expected" },
        });
        const b1 = down("beta", 3, "2026-11-20T10:00:30Z", { scheduled_at: "2026-11-20T10:00:29.999Z" });
        const first = batch("g1", 0, 0, [a1, a2]);
        const second = batch("g1", 1, 0, [b1]);
        const result = await writeBatch(sql, {
          ...first,
          checks: [...first.checks, ...second.checks],
          progress: [...first.progress, ...second.progress],
        });
        assertEquals(result, { stored: 3, duplicates: 0, deadLetters: 0, skipped: 0 });

        assertEquals(await checkRows(sql, "alpha"), [
          {
            id: uuid(1),
            site: "alpha",
            agent: "probe-1",
            region: "eu",
            scheduled_at: "2026-11-20T10:00:00.000Z",
            started_at: "2026-11-20T10:00:00.000Z",
            up: true,
            status: 200,
            ttfb_ms: 12.5,
            duration_ms: 40.25,
            bytes: 512,
            regex_matched: true,
            cert_expires_at: "2027-01-01T00:00:00.000Z",
            error_kind: null,
            error_message: null,
          },
          {
            id: uuid(2),
            site: "alpha",
            agent: "probe-2",
            region: null,
            scheduled_at: "2026-11-20T10:01:00.250Z",
            started_at: "2026-11-20T10:01:00.250Z",
            up: false,
            status: 503,
            ttfb_ms: 5,
            duration_ms: 7.5,
            bytes: 0,
            regex_matched: false,
            cert_expires_at: null,
            error_kind: "http",
            error_message: "status 503 is not expected",
          },
        ]);
        assertEquals(await checkRows(sql, "beta"), [{
          id: uuid(3),
          site: "beta",
          agent: "probe-1",
          region: "eu",
          scheduled_at: "2026-11-20T10:00:29.999Z",
          started_at: "2026-11-20T10:00:30.000Z",
          up: false,
          status: null,
          ttfb_ms: null,
          duration_ms: 10000,
          bytes: null,
          regex_matched: null,
          cert_expires_at: null,
          error_kind: "timeout",
          error_message: "no response within 10000 ms",
        }]);
        assertEquals([...await sql`select id, name, url, regex from sites order by id`], [
          { id: 1, name: "alpha", url: "https://alpha.example/", regex: "Welcome" },
          { id: 2, name: "beta", url: "https://beta.example/", regex: null },
        ]);
        assertEquals(await siteRow(sql, "alpha"), {
          name: "alpha",
          url: "https://alpha.example/",
          regex: "Welcome",
          first_seen: "2026-11-20T10:00:00.000Z",
          last_seen: "2026-11-20T10:01:00.250Z",
        });
        assertEquals([...await sql`select id, name, region from agents order by id`], [
          { id: 1, name: "probe-1", region: "eu" },
          { id: 2, name: "probe-2", region: null },
        ]);
        assertEquals(await statusOf(sql, "alpha"), {
          check_id: uuid(1),
          checked_at: "2026-11-20T10:00:00.000Z",
          agent: "probe-1",
          up: true,
          status: 200,
          state_since: "2026-11-20T10:00:00.000Z",
          consecutive_failures: 0,
          error_kind: null,
          error_message: null,
          duration_ms: 40.25,
        });
        assertEquals(await statusOf(sql, "alpha", "probe-2"), {
          check_id: uuid(2),
          checked_at: "2026-11-20T10:01:00.250Z",
          agent: "probe-2",
          up: false,
          status: 503,
          state_since: "2026-11-20T10:01:00.250Z",
          consecutive_failures: 1,
          error_kind: "http",
          error_message: "status 503 is not expected",
          duration_ms: 7.5,
        });
        assertEquals(await statusOf(sql, "beta"), {
          check_id: uuid(3),
          checked_at: "2026-11-20T10:00:30.000Z",
          agent: "probe-1",
          up: false,
          status: null,
          state_since: "2026-11-20T10:00:30.000Z",
          consecutive_failures: 1,
          error_kind: "timeout",
          error_message: "no response within 10000 ms",
          duration_ms: 10000,
        });
        assertEquals(
          [...await sql`select group_id, topic, partition, next_offset from consumer_offsets order by partition`],
          [
            { group_id: "g1", topic: "monitor.checks", partition: 0, next_offset: "2" },
            { group_id: "g1", topic: "monitor.checks", partition: 1, next_offset: "1" },
          ],
        );
        assertEquals(await readOffsets(sql, "g1", "monitor.checks"), new Map([[0, "2"], [1, "1"]]));
        assertEquals(await readOffsets(sql, "g1", "other.topic"), new Map());
      },
    );

    await t.step("writeBatch() stores the same check id once and counts the rest as duplicates", async () => {
      const c = down("gamma", 10, "2026-11-20T11:00:00Z");
      assertEquals(await writeBatch(sql, batch("g2", 0, 0, [c, c])), {
        stored: 1,
        duplicates: 1,
        deadLetters: 0,
        skipped: 0,
      });
      // A producer retry can also publish it again later, at a new offset.
      assertEquals(await writeBatch(sql, batch("g2", 0, 2, [c])), {
        stored: 0,
        duplicates: 1,
        deadLetters: 0,
        skipped: 0,
      });
      assertEquals(await count(sql, "gamma"), 1);
      assertEquals((await statusOf(sql, "gamma"))?.consecutive_failures, 1);
      // A ULID is stored as the UUID with the same 128 bits.
      const ulid = check("gamma", 0, "2026-11-20T11:01:00Z", { id: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
      assertEquals((await writeBatch(sql, batch("g2", 0, 3, [ulid]))).stored, 1);
      assertEquals((await checkRows(sql, "gamma")).map((r) => r.id), [
        uuid(10),
        "01563e3a-b5d3-d676-4c61-efb99302bd5b",
      ]);
    });

    await t.step(
      "writeBatch() stores an id that comes again with another start time or site as another row, in state and rollups too",
      async () => {
        const first = down("reused", 20, "2026-11-20T13:00:00Z");
        const later = check("reused", 20, "2026-11-20T13:00:30Z");
        const elsewhere = check("reused-other", 20, "2026-11-20T13:00:10Z");
        assertEquals(await writeBatch(sql, batch("g2b", 0, 0, [first, later, elsewhere, later])), {
          stored: 3,
          duplicates: 1,
          deadLetters: 0,
          skipped: 0,
        });
        assertEquals([await count(sql, "reused"), await count(sql, "reused-other")], [2, 1]);
        // What the fold counted (rollup tables and the current hour's counts) is what the table holds.
        const counted = () =>
          sql<{ site: string; checks: number; up_checks: number }[]>`
            select s.name as site, sum(r.checks)::int as checks, sum(r.up_checks)::int as up_checks
            from rollups_stored('-infinity', 'infinity', '1 hour') r join sites s on s.id = r.site_id
            where s.name in ('reused', 'reused-other') group by s.name order by s.name`;
        assertEquals((await counted()).map((row) => ({ ...row })), [
          { site: "reused", checks: 2, up_checks: 1 },
          { site: "reused-other", checks: 1, up_checks: 1 },
        ]);
        assertEquals((await statusOf(sql, "reused"))?.up, true);
        assertEquals((await statusOf(sql, "reused-other"))?.up, true);
        // Sent again in a later batch: all three are duplicates.
        assertEquals((await writeBatch(sql, batch("g2b", 0, 4, [first, later, elsewhere]))).duplicates, 3);
        assertEquals((await counted()).map((row) => row.checks), [2, 1]);
      },
    );

    await t.step(
      "writeBatch() skips messages below the stored next offset, so a redelivery stores nothing twice",
      async () => {
        const checks = [10, 11, 12, 13, 14].map((n) => check("delta", 100 + n, `2026-11-20T12:00:${n}Z`));
        assertEquals(await writeBatch(sql, batch("g3", 4, 10, checks.slice(0, 3))), {
          stored: 3,
          duplicates: 0,
          deadLetters: 0,
          skipped: 0,
        });
        assertEquals(await writeBatch(sql, batch("g3", 4, 10, checks.slice(0, 3))), {
          stored: 0,
          duplicates: 0,
          deadLetters: 0,
          skipped: 3,
        });
        assertEquals(await writeBatch(sql, batch("g3", 4, 11, checks.slice(1, 5))), {
          stored: 2,
          duplicates: 0,
          deadLetters: 0,
          skipped: 2,
        });
        assertEquals(await readOffsets(sql, "g3", "monitor.checks"), new Map([[4, "15"]]));
        // A zombie consumer still committing an old batch neither stores it nor moves the offset back.
        assertEquals((await writeBatch(sql, batch("g3", 4, 10, checks.slice(0, 2)))).skipped, 2);
        assertEquals(await readOffsets(sql, "g3", "monitor.checks"), new Map([[4, "15"]]));
        assertEquals(await count(sql, "delta"), 5);
        // Another consumer group has its own offsets; the check ids still keep it from storing rows twice.
        assertEquals(await writeBatch(sql, batch("g3-other", 4, 10, checks)), {
          stored: 0,
          duplicates: 5,
          deadLetters: 0,
          skipped: 0,
        });
        assertEquals(await count(sql, "delta"), 5);
      },
    );

    await t.step(
      "a batch fetched from past the stored offset is refused whole (OffsetGap); from at or before it, stored",
      async () => {
        const checks = [1, 2, 3, 4, 5, 6].map((n) => check("gap", 900 + n, `2026-11-20T12:30:0${n}Z`));
        const vouched = (from: number, first: number, some: CheckResult[]): Batch => {
          const plain = batch("g-gap", 2, first, some);
          return { ...plain, progress: [{ ...plain.progress[0]!, fetchedFrom: String(from) }] };
        };
        assertEquals((await writeBatch(sql, vouched(0, 0, checks.slice(0, 2)))).stored, 2);
        // Offsets 2 and 3 were never stored: a batch fetched from 4 would skip them.
        const gap = await assertRejects(
          () => writeBatch(sql, vouched(4, 4, checks.slice(4))),
          OffsetGap,
        ) as OffsetGap;
        assertEquals([gap.partition, gap.stored], [2, "2"]);
        assertEquals(
          gap.message,
          "Cannot write batch as partition 2 was fetched from offset 4 but the next offset stored is 2: " +
            "the messages between were never stored",
        );
        assertEquals(await count(sql, "gap"), 2);
        assertEquals(await readOffsets(sql, "g-gap", "monitor.checks"), new Map([[2, "2"]]));
        // Fetched from 1 (a replay of offset 1, then new ones): the replayed one is skipped, the rest stored.
        assertEquals(await writeBatch(sql, vouched(1, 1, checks.slice(1, 4))), {
          stored: 2,
          duplicates: 0,
          deadLetters: 0,
          skipped: 1,
        });
        assertEquals((await writeBatch(sql, vouched(4, 4, checks.slice(4)))).stored, 2);
        assertEquals(await readOffsets(sql, "g-gap", "monitor.checks"), new Map([[2, "6"]]));
        // Without fetchedFrom nothing is vouched for, and nothing is refused (kafkajs may skip offsets).
        assertEquals((await writeBatch(sql, batch("g-gap-2", 2, 4, checks.slice(4)))).skipped, 0);
      },
    );

    await t.step("two writers committing the same batch at once store it once", async () => {
      const other = postgres(db.url, { max: 2, onnotice: () => {} });
      try {
        const checks = [1, 2, 3, 4].map((n) => down("eta", 200 + n, `2026-11-20T13:00:0${n}Z`));
        const same = batch("g4", 0, 0, checks);
        const results = await Promise.all([writeBatch(sql, same), writeBatch(other, same)]);
        assertEquals(results.map((r) => r.stored + r.skipped), [4, 4]);
        assertEquals(results.map((r) => r.stored).sort(), [0, 4]);
        assertEquals(await count(sql, "eta"), 4);
        assertEquals((await statusOf(sql, "eta"))?.consecutive_failures, 4);
      } finally {
        await other.end();
      }
    });

    await t.step(
      "location state never goes back in time, and an older check does not change the site's URL",
      async () => {
        await writeBatch(sql, batch("g5", 0, 0, [check("epsilon", 300, "2026-11-20T12:00:00Z")]));
        const older = down("epsilon", 301, "2026-11-20T11:00:00Z", { url: "https://old.epsilon.example/" });
        assertEquals((await writeBatch(sql, batch("g5", 0, 1, [older]))).stored, 1);
        assertEquals(await count(sql, "epsilon"), 2);
        assertEquals(await statusOf(sql, "epsilon"), {
          check_id: uuid(300),
          checked_at: "2026-11-20T12:00:00.000Z",
          agent: "probe-1",
          up: true,
          status: 200,
          state_since: "2026-11-20T12:00:00.000Z",
          consecutive_failures: 0,
          error_kind: null,
          error_message: null,
          duration_ms: 40.25,
        });
        assertEquals(await siteRow(sql, "epsilon"), {
          name: "epsilon",
          url: "https://epsilon.example/",
          regex: null,
          first_seen: "2026-11-20T11:00:00.000Z",
          last_seen: "2026-11-20T12:00:00.000Z",
        });
      },
    );

    await t.step(
      "sites.last_seen moves in steps of an hour, so most batches do not rewrite the site",
      async () => {
        await writeBatch(sql, batch("g5b", 0, 0, [check("iota2", 320, "2026-11-20T10:00:00Z")]));
        await writeBatch(sql, batch("g5b", 0, 1, [check("iota2", 321, "2026-11-20T10:59:59Z")]));
        assertEquals((await siteRow(sql, "iota2"))?.last_seen, "2026-11-20T10:00:00.000Z");
        await writeBatch(sql, batch("g5b", 0, 2, [check("iota2", 322, "2026-11-20T11:00:00Z")]));
        assertEquals((await siteRow(sql, "iota2"))?.last_seen, "2026-11-20T11:00:00.000Z");
        // A new URL is written at once.
        await writeBatch(
          sql,
          batch("g5b", 0, 3, [check("iota2", 323, "2026-11-20T11:00:01Z", { url: "https://b/" })]),
        );
        assertEquals(await siteRow(sql, "iota2"), {
          name: "iota2",
          url: "https://b/",
          regex: null,
          first_seen: "2026-11-20T10:00:00.000Z",
          last_seen: "2026-11-20T11:00:01.000Z",
        });
      },
    );

    await t.step(
      "state_since and consecutive_failures follow started_at order within and across batches",
      async () => {
        const steps: [CheckResult[], string, number][] = [
          [[check("zeta", 400, "2026-11-20T10:00:00Z")], "2026-11-20T10:00:00.000Z", 0],
          // Given newest first: applied in started_at order.
          [
            [down("zeta", 402, "2026-11-20T10:02:00Z"), down("zeta", 401, "2026-11-20T10:01:00Z")],
            "2026-11-20T10:01:00.000Z",
            2,
          ],
          [[down("zeta", 403, "2026-11-20T10:03:00Z")], "2026-11-20T10:01:00.000Z", 3],
          [
            [check("zeta", 405, "2026-11-20T10:05:00Z"), check("zeta", 404, "2026-11-20T10:04:00Z")],
            "2026-11-20T10:04:00.000Z",
            0,
          ],
          [[check("zeta", 406, "2026-11-20T10:06:00Z")], "2026-11-20T10:04:00.000Z", 0],
          // Same started_at: the larger check id is the later one.
          [
            [down("zeta", 408, "2026-11-20T10:07:00Z"), check("zeta", 407, "2026-11-20T10:07:00Z")],
            "2026-11-20T10:07:00.000Z",
            1,
          ],
          // One check older than the stored one (ignored) and one newer: the careful path.
          [
            [down("zeta", 409, "2026-11-20T10:06:30Z"), down("zeta", 410, "2026-11-20T10:08:00Z")],
            "2026-11-20T10:07:00.000Z",
            2,
          ],
        ];
        let offset = 0;
        for (const [checks, since, failures] of steps) {
          await writeBatch(sql, batch("g6", 0, offset, checks));
          offset += checks.length;
          const status = await statusOf(sql, "zeta");
          assertEquals([status?.state_since, status?.consecutive_failures], [since, failures]);
        }
        assertEquals((await statusOf(sql, "zeta"))?.check_id, uuid(410));
      },
    );

    await t.step(
      "location state after random batches, late checks included, matches a model of the latest run",
      async () => {
        let seed = 42;
        const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
        // The model: the latest check (by started_at, then id) and the run of equal verdicts it ends.
        const all: CheckResult[] = [];
        let offset = 0;
        let id = 1000;
        let minute = 0;
        for (let round = 0; round < 40; round++) {
          const checks: CheckResult[] = [];
          for (let n = 1 + Math.floor(random() * 4); n > 0; n--) {
            // Mostly forward in time; now and then a late check from before the latest one.
            minute += random() < 0.2 ? -Math.floor(random() * 3) - 1 : 1;
            const at = new Date(Date.UTC(2026, 10, 21, 0, 0, 0) + (minute * 60 + (id % 7)) * 1000)
              .toISOString();
            checks.push(random() < 0.5 ? check("mu", id++, at) : down("mu", id++, at));
          }
          await writeBatch(sql, batch("g6b", 0, offset, checks));
          offset += checks.length;
          // Late checks (older than the latest stored before their batch) never move the state.
          const key = (c: CheckResult) => `${new Date(c.started_at).toISOString()} ${c.id}`;
          for (const c of [...checks].sort((a, b) => key(a) < key(b) ? -1 : 1)) {
            if (all.length === 0 || key(c) > key(all[all.length - 1]!)) all.push(c);
          }
          const last = all[all.length - 1]!;
          let start = all.length - 1;
          while (start > 0 && all[start - 1]!.up === last.up) start--;
          const model = {
            checkId: last.id,
            up: last.up,
            stateSince: all[start]!.started_at,
            consecutiveFailures: last.up ? 0 : all.length - start,
          };
          const status = await statusOf(sql, "mu");
          assertEquals(
            [status?.check_id, status?.up, status?.state_since, status?.consecutive_failures],
            [model.checkId, model.up, new Date(model.stateSince).toISOString(), model.consecutiveFailures],
            `after round ${round}`,
          );
        }
      },
    );

    await t.step(
      "a check from an agent whose clock is far ahead is stored but does not become the status",
      async () => {
        const now = new Date("2026-11-20T12:00:00Z");
        await writeBatch(sql, batch("g7", 0, 0, [check("theta", 500, "2026-11-20T11:59:00Z")]), { now });
        const ahead = down("theta", 501, "2027-06-01T00:00:00Z", { url: "https://new.theta.example/" });
        assertEquals((await writeBatch(sql, batch("g7", 0, 1, [ahead]), { now })).stored, 1);
        assertEquals((await statusOf(sql, "theta"))?.check_id, uuid(500));
        // last_seen stops at the sink's clock, so the next real check still updates the URL.
        assertEquals(await siteRow(sql, "theta"), {
          name: "theta",
          url: "https://new.theta.example/",
          regex: null,
          first_seen: "2026-11-20T11:59:00.000Z",
          last_seen: "2026-11-20T12:00:00.000Z",
        });
        const next = check("theta", 502, "2026-11-20T12:01:00Z");
        await writeBatch(sql, batch("g7", 0, 2, [next]), { now: new Date("2026-11-20T12:01:00Z") });
        assertEquals((await statusOf(sql, "theta"))?.check_id, uuid(502));
        assertEquals((await siteRow(sql, "theta"))?.url, "https://theta.example/");
      },
    );

    await t.step(
      "dead letters are stored raw with topic, partition, offset and error, once on redelivery",
      async () => {
        const poison = {
          key: new TextEncoder().encode("iota"),
          value: new Uint8Array([0x7b, 0xff, 0x00, 0x7d]),
          error: "Cannot decode check: the value is not valid UTF-8\0",
        };
        const first = batch("g8", 2, 40, [check("iota", 600, "2026-11-20T14:00:00Z")], [poison, {
          ...poison,
          key: null,
          value: null,
        }]);
        assertEquals(await writeBatch(sql, first), { stored: 1, duplicates: 0, deadLetters: 2, skipped: 0 });
        const rows = await sql`
        select topic, partition, "offset", key, payload, error from dead_letters order by "offset"`;
        assertEquals(
          rows.map((r) => ({ ...r, key: r.key && [...r.key], payload: r.payload && [...r.payload] })),
          [
            {
              topic: "monitor.checks",
              partition: 2,
              offset: "41",
              key: [...poison.key],
              payload: [0x7b, 0xff, 0x00, 0x7d],
              error: "Cannot decode check: the value is not valid UTF-8\uFFFD",
            },
            {
              topic: "monitor.checks",
              partition: 2,
              offset: "42",
              key: null,
              payload: null,
              error: poison.error.replace("\0", "\uFFFD"),
            },
          ],
        );
        assertEquals(await writeBatch(sql, first), { stored: 0, duplicates: 0, deadLetters: 0, skipped: 3 });
        assertEquals(await writeBatch(sql, { ...first, group: "g8-other" }), {
          stored: 0,
          duplicates: 1,
          deadLetters: 0,
          skipped: 0,
        });
        assertEquals((await sql`select count(*)::int as n from dead_letters`)[0]?.n, 2);
      },
    );

    await t.step("a NUL in free text is stored as U+FFFD instead of failing the batch", async () => {
      const c = down("kappa", 700, "2026-11-20T15:00:00Z", {
        url: "https://kappa.example/\0",
        regex: "a\0b",
        error: { kind: "other", message: "bad\0byte" },
      });
      assertEquals((await writeBatch(sql, batch("g9", 0, 0, [c]))).stored, 1);
      assertEquals((await checkRows(sql, "kappa"))[0]?.error_message, "bad\uFFFDbyte");
      assertEquals((await statusOf(sql, "kappa"))?.error_message, "bad\uFFFDbyte");
      assertEquals([(await siteRow(sql, "kappa"))?.url, (await siteRow(sql, "kappa"))?.regex], [
        "https://kappa.example/\uFFFD",
        "a\uFFFDb",
      ]);
    });

    await t.step(
      "text with quotes, backslashes, braces, commas or the word NULL is stored as given",
      async () => {
        const odd = 'we"ird\\, {NULL} site';
        const c = down(odd, 701, "2026-11-20T15:30:00Z", {
          agent: "NULL",
          region: '{"a","b"}',
          regex: '^\\d+ "x"$',
          error: { kind: "content", message: 'expected "\\d" in {body}, got NULL' },
        });
        assertEquals((await writeBatch(sql, batch("g9b", 0, 0, [c]))).stored, 1);
        const [row] = await checkRows(sql, odd);
        assertEquals([row?.site, row?.agent, row?.region, row?.error_message], [
          odd,
          "NULL",
          '{"a","b"}',
          'expected "\\d" in {body}, got NULL',
        ]);
        assertEquals((await siteRow(sql, odd))?.regex, '^\\d+ "x"$');
      },
    );

    await t.step(
      "timestampMicros() reads a timestamp to the microsecond exactly as PostgreSQL does",
      async () => {
        const samples = [
          "2026-11-20T10:00:00Z",
          "2026-11-20T10:00:00.1Z",
          "2026-11-20T10:00:00.123Z",
          "1999-12-31T23:59:59.999Z",
          "2026-11-20T10:00:00.123456Z",
          "2026-11-20T10:00:00.1234565Z",
          "2026-11-20T10:00:00.1234575Z",
          "2026-11-20T10:00:00.999999999Z",
          "1970-01-01T00:00:00.000001Z",
          "2026-11-20T10:00:00.0000005Z",
          "2026-11-20T10:00:00.0000015Z",
        ];
        const rows = await sql<{ micros: string }[]>`
        select (extract(epoch from t::timestamptz) * 1000000)::int8 as micros
        from unnest(${sql.array(samples, 25)}::text[]) with ordinality as u(t, n) order by n`;
        assertEquals(samples.map((s) => timestampMicros(s)), rows.map((row) => BigInt(row.micros)));
        assertThrows(
          () => timestampMicros("2026-11-20 10:00:00Z"),
          RangeError,
          "Cannot read timestamp: '2026-11-20 10:00:00Z' is not an RFC 3339 UTC timestamp",
        );
      },
    );

    await t.step("writeBatch() rejects a malformed batch before touching the database", async () => {
      const good = batch("g10", 0, 5, [check("lambda", 800, "2026-11-20T16:00:00Z")]);
      await assertRejects(
        () => writeBatch(sql, { ...good, progress: [{ partition: 0, firstOffset: "6", nextOffset: "7" }] }),
        RangeError,
        "Cannot write batch as a check at partition 0 offset '5' is outside the batch's range for that partition: 6 to 6",
      );
      await assertRejects(
        () => writeBatch(sql, { ...good, progress: [] }),
        RangeError,
        "Cannot write batch as a check at partition 0 offset '5' has no progress entry",
      );
      await assertRejects(
        () => writeBatch(sql, { ...good, progress: [{ partition: 0, firstOffset: "5", nextOffset: "-1" }] }),
        TypeError,
        "Cannot write batch as 'nextOffset' must be a decimal offset: got '-1'",
      );
      await assertRejects(
        () => writeBatch(sql, { ...good, progress: [{ partition: 0, firstOffset: "7", nextOffset: "6" }] }),
        RangeError,
        "Cannot write batch as partition 0 has firstOffset '7' after nextOffset '6'",
      );
      await assertRejects(
        () => writeBatch(sql, { ...good, group: "" }),
        TypeError,
        "Cannot write batch as 'group' must not be empty",
      );
      assertEquals(await readOffsets(sql, "g10", "monitor.checks"), new Map());
      assertEquals(await siteRow(sql, "lambda"), null);
    });

    await t.step(
      "reading a site's rows back fails (a lock timeout) after inserts in slices: the batch is refused with that error",
      async () => {
        const now = new Date("2026-11-25T00:02:01Z");
        await writeBatch(sql, batch("g12", 0, 0, [down("nu", 1200, "2026-11-25T00:00:00Z")]), { now });
        // Another session holds the site's open incident: reading the site's rows back (the cache is not used)
        // waits, then times out, which aborts the transaction that inserted the batch's checks in slices.
        const locker = postgres(db.url, { max: 1, onnotice: () => {} });
        const writer = postgres(db.url, { max: 1, onnotice: () => {}, connection: { lock_timeout: 300 } });
        try {
          let release!: () => void;
          const held = new Promise<void>((resolve) => release = resolve);
          let locked!: () => void;
          const lockTaken = new Promise<void>((resolve) => locked = resolve);
          const holding = locker.begin(async (tx) => {
            await tx`select * from site_incidents for update`;
            locked();
            await held;
          });
          await lockTaken;
          const next = [down("nu", 1201, "2026-11-25T00:01:00Z"), check("nu", 1202, "2026-11-25T00:02:00Z")];
          const refused = await writeBatch(writer, batch("g12", 0, 1, next), { now, sliceChecks: 1 }).then(
            () => null,
            (error: { code?: string }) => error.code,
          );
          release();
          await holding;
          // The lock timeout itself (55P03), not the 25P02 of the statements after it; nothing stored.
          assertEquals(refused, "55P03");
          assertEquals(await readOffsets(sql, "g12", "monitor.checks"), new Map([[0, "1"]]));
        } finally {
          await locker.end();
          await writer.end();
        }
      },
    );

    await t.step("an empty batch only moves the offsets", async () => {
      const empty: Batch = {
        group: "g11",
        topic: "monitor.checks",
        checks: [],
        deadLetters: [],
        progress: [{ partition: 3, firstOffset: "90", nextOffset: "100" }],
      };
      assertEquals(await writeBatch(sql, empty), { stored: 0, duplicates: 0, deadLetters: 0, skipped: 0 });
      assertEquals(await readOffsets(sql, "g11", "monitor.checks"), new Map([[3, "100"]]));
    });
  } finally {
    await db.drop();
  }
});
