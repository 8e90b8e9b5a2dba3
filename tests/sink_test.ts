/**
 * `monitor sink` against the real broker and PostgreSQL: end to end from `check --once`, poison messages,
 * duplicates, crashes, database outages, rebalances and TLS.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { runMonitor, type RunningMonitor, startMonitor, tempFile, waitFor } from "./_cli.ts";
import { makeCheck, manyChecks, produce, produceChecks } from "./_checks.ts";
import { BROKER, CERTS, committedOffsets, createTopic, plainKafka } from "./_kafka.ts";
import { createTestDatabase, startPrivatePostgres, type TestDatabase } from "./_pg.ts";
import postgres from "postgres";
import { delay } from "../src/async.ts";
import { migrate } from "../src/db/migrate.ts";
import { silentLogger } from "../src/log.ts";

const options = { sanitizeOps: false, sanitizeResources: false };

function startSink(databaseUrl: string, topic: string, group: string, extraEnv: Record<string, string> = {}) {
  return startMonitor(
    ["sink", "--brokers", BROKER, "--topic", topic, "--group", group, "--summary-every", "2s"],
    { DATABASE_URL: databaseUrl, ...extraEnv },
  );
}

/** Rows in `table`; 0 while the sink has not created it yet (SQLSTATE 42P01), and any other error thrown. */
async function count(sql: postgres.Sql, table: "checks" | "dead_letters"): Promise<number> {
  try {
    const [row] = await sql.unsafe(`select count(*)::int as n from ${table}`);
    return row!.n;
  } catch (error) {
    if ((error as { code?: unknown }).code === "42P01") return 0; // undefined_table: not migrated yet
    throw error;
  }
}

/**
 * Waits until `checks` holds exactly `expected` rows, lets a second pass (anything more, a duplicate, would show
 * by then), and asserts the count again. On a timeout the error carries what the sink logged.
 */
async function expectStoredExactly(
  sql: postgres.Sql,
  expected: number,
  timeoutMs: number,
  sink: RunningMonitor,
): Promise<void> {
  await waitFor(async () => (await count(sql, "checks")) === expected, timeoutMs, "every check stored")
    .catch((error) => {
      throw new Error(`${error.message}; the sink said:\n${sink.stderr.text.slice(-6000)}`);
    });
  await delay(1_000);
  assertEquals(await count(sql, "checks"), expected);
}

/** The rollups (tables plus the current hours kept in location_state) equal a recomputation from the checks. */
async function expectRollupsFollowChecks(sql: postgres.Sql): Promise<void> {
  for (const width of ["1 hour", "1 day"]) {
    const [diff] = await sql`
      select count(*)::int as n from (
        (select bucket, site_id, location_id, checks, up_checks, counts_pairs(error_counts) as e,
                counts_pairs(latency) as l from rollups_stored('-infinity', 'infinity', ${width}::interval)
         except all
         select bucket, site_id, location_id, checks, up_checks, counts_pairs(error_counts),
                counts_pairs(latency) from rollups_from_checks('-infinity', 'infinity', ${width}::interval))
        union all
        (select bucket, site_id, location_id, checks, up_checks, counts_pairs(error_counts),
                counts_pairs(latency) from rollups_from_checks('-infinity', 'infinity', ${width}::interval)
         except all
         select bucket, site_id, location_id, checks, up_checks, counts_pairs(error_counts),
                counts_pairs(latency) from rollups_stored('-infinity', 'infinity', ${width}::interval))
      ) d`;
    assertEquals(diff?.n, 0, `rollups by ${width} differ from the raw checks`);
  }
}

/**
 * The state the sinks left follows from the stored checks (one location a site, as `manyChecks` makes them):
 * each location holds its latest check and the site's state and open incident match it, and the rollups
 * follow too.
 */
async function expectStateFollowsChecks(sql: postgres.Sql): Promise<void> {
  const [state] = await sql<
    { sites: number; wrong_latest: number; wrong_state: number; wrong_open: number }[]
  >`
    with latest as (
      select distinct on (site_id) site_id, id, up from checks order by site_id, started_at desc, id desc
    )
    select count(*)::int as sites,
           count(*) filter (where l.check_id is distinct from c.id)::int as wrong_latest,
           count(*) filter (where s.state is distinct from case when c.up then 'up' else 'down' end)::int as wrong_state,
           count(*) filter (where (i.id is null) is distinct from c.up)::int as wrong_open
    from latest c
    left join location_state l on l.site_id = c.site_id
    left join site_state s on s.site_id = c.site_id
    left join site_incidents i on i.site_id = c.site_id and i.ended_at is null`;
  assertEquals(state, { sites: state!.sites, wrong_latest: 0, wrong_state: 0, wrong_open: 0 });
  await expectRollupsFollowChecks(sql);
}

/** The group's committed offsets in Kafka, as "partition:offset" in partition order. */
async function committedInKafka(topic: string, group: string): Promise<string> {
  const offsets = await committedOffsets(topic, group);
  return [...offsets].sort(([a], [b]) => a - b).map(([partition, offset]) => `${partition}:${offset}`).join(
    " ",
  );
}

async function withDatabase(fn: (db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase("monitor_sink");
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}

Deno.test(
  "end to end: check --once -> topic -> sink -> exact rows, status and uptime views",
  options,
  async () => {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      return new URL(request.url).pathname === "/ok"
        ? new Response("fine")
        : new Response("no", { status: 503 });
    });
    const base = `http://127.0.0.1:${server.addr.port}`;
    const sites = await tempFile(
      `[[site]]\nname = "good"\nurl = "${base}/ok"\n\n[[site]]\nname = "bad"\nurl = "${base}/down"\n`,
    );
    try {
      await withDatabase(async (db) => {
        const topic = await createTopic("e2e", 2);
        for (let i = 0; i < 2; i++) {
          const run = await runMonitor([
            "check",
            "--sites",
            sites,
            "--once",
            "--brokers",
            BROKER,
            "--topic",
            topic,
            "--agent",
            "e2e-agent",
            "--region",
            "local",
          ]);
          assertEquals(run.code, 1, run.stderr);
        }
        const sink = startSink(db.url, topic, "e2e");
        await waitFor(async () => (await count(db.sql, "checks")) === 4, 30_000, "4 checks stored");
        const rows = await db.sql`
        select s.name, c.up, c.status, c.error_kind::text as kind, a.name as agent, a.region
        from checks c join sites s on s.id = c.site_id join agents a on a.id = c.agent_id
        order by s.name, c.started_at`;
        assertEquals(rows.map((r) => ({ ...r })), [
          { name: "bad", up: false, status: 503, kind: "http", agent: "e2e-agent", region: "local" },
          { name: "bad", up: false, status: 503, kind: "http", agent: "e2e-agent", region: "local" },
          { name: "good", up: true, status: 200, kind: null, agent: "e2e-agent", region: "local" },
          { name: "good", up: true, status: 200, kind: null, agent: "e2e-agent", region: "local" },
        ]);
        const siteRows = await db.sql`select name, url from sites order by name`;
        assertEquals(siteRows.map((r) => ({ ...r })), [
          { name: "bad", url: `${base}/down` },
          { name: "good", url: `${base}/ok` },
        ]);
        const status = await db.sql`
        select site, location, up, consecutive_failures from location_status order by site`;
        assertEquals(status.map((r) => ({ ...r })), [
          { site: "bad", location: "local", up: false, consecutive_failures: 2 },
          { site: "good", location: "local", up: true, consecutive_failures: 0 },
        ]);
        const states = await db.sql`select site, state from site_status order by site`;
        assertEquals(states.map((r) => ({ ...r })), [{ site: "bad", state: "down" }, {
          site: "good",
          state: "up",
        }]);
        const uptime = await db.sql`
        select site, checks::int, up_checks::int, uptime_percent::float8 as pct
        from site_uptime(null, now() - interval '1 day', now() + interval '1 hour', null) order by site`;
        assertEquals(uptime.map((r) => ({ ...r })), [
          { site: "bad", checks: 2, up_checks: 0, pct: 0 },
          { site: "good", checks: 2, up_checks: 2, pct: 100 },
        ]);
        const stopped = await sink.stop();
        assertEquals(stopped.code, 0, stopped.stderr);
      });
    } finally {
      await server.shutdown();
      await Deno.remove(sites);
    }
  },
);

Deno.test(
  "poison messages go to dead_letters with a precise error; good ones and the rest are stored",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("poison");
      const now = new Date();
      const good1 = makeCheck("alpha", now);
      const good2 = makeCheck("beta", new Date(now.getTime() + 1));
      const { url: _url, ...missingUrl } = makeCheck("gamma", now);
      const poison: { value: string | Uint8Array | null; error: string }[] = [
        { value: "{not json", error: "Cannot decode check: the value is not JSON: " },
        { value: JSON.stringify({ ...good1, v: 2, id: crypto.randomUUID() }), error: "version number 2" },
        { value: JSON.stringify(missingUrl), error: "Cannot decode check: field 'url' is missing" },
        {
          value: JSON.stringify({ ...makeCheck("delta", now), status: "200" }),
          error: "Cannot decode check: field 'status' must be a number: got '200'",
        },
        {
          value: JSON.stringify({ ...makeCheck("eps", now), status: 999 }),
          error: "Cannot decode check: field 'status' must be between 100 and 599: got 999",
        },
        {
          value: JSON.stringify({ ...makeCheck("zeta", now), padding: "x".repeat(70_000) }),
          error: "over the limit of 65536",
        },
        { value: null, error: "Cannot decode check: the message has no value" },
        {
          value: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
          error: "Cannot decode check: the value is not valid UTF-8",
        },
        { value: "[1,2,3]", error: "Cannot decode check: the value is an array, not an object" },
      ];
      await produce(topic, [
        { key: "alpha", value: JSON.stringify(good1) },
        ...poison.map((p) => ({ key: "poison", value: p.value })),
        { key: "beta", value: JSON.stringify(good2) },
        { key: "alpha", value: JSON.stringify(good1) }, // the same check id again: stored once
      ]);
      const sink = startSink(db.url, topic, "poison");
      await waitFor(
        async () =>
          (await count(db.sql, "dead_letters")) === poison.length && (await count(db.sql, "checks")) === 2,
        30_000,
        "dead letters and checks",
      );
      await delay(1_000); // anything more (a duplicate) would show up by now
      const letters = await db
        .sql`select "offset"::int as offset, topic, partition, payload, error from dead_letters order by "offset"`;
      assertEquals(letters.length, poison.length);
      letters.forEach((letter, i) => {
        assertEquals([letter.offset, letter.topic, letter.partition], [i + 1, topic, 0]);
        const expected = poison[i]!;
        assertMatch(letter.error, new RegExp(expected.error.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
        const raw = expected.value === null
          ? null
          : typeof expected.value === "string"
          ? new TextEncoder().encode(expected.value)
          : expected.value;
        assertEquals(letter.payload === null ? null : new Uint8Array(letter.payload), raw);
      });
      const ids = await db.sql`select id::text from checks order by started_at`;
      assertEquals(ids.map((r) => r.id), [good1.id, good2.id]);
      const [offsets] = await db
        .sql`select next_offset::int as next from consumer_offsets where topic = ${topic}`;
      assertEquals(offsets?.next, poison.length + 3);
      const stopped = await sink.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
    });
  },
);

Deno.test(
  "the sink killed with SIGKILL mid-backlog and restarted stores every check exactly once",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("sigkill", 3);
      const checks = manyChecks(60_000, 200);
      await produceChecks(topic, checks);
      const first = startSink(db.url, topic, "crash");
      await waitFor(async () => (await count(db.sql, "checks")) > 0, 30_000, "the first rows");
      await first.stop("SIGKILL");
      const atKill = await count(db.sql, "checks");
      const second = startSink(db.url, topic, "crash");
      await expectStoredExactly(db.sql, checks.length, 60_000, second);
      const [distinct] = await db.sql`select count(distinct id)::int as n from checks`;
      assertEquals(distinct?.n, checks.length);
      const [next] = await db
        .sql`select sum(next_offset)::int as n from consumer_offsets where topic = ${topic}`;
      assertEquals(next?.n, checks.length);
      // The rollups (tables plus the current hours kept in location_state) count each check once, too.
      await expectRollupsFollowChecks(db.sql);
      const [total] = await db.sql`
        select sum(checks)::int as n from rollups_stored('-infinity', 'infinity', '1 day')`;
      assertEquals(total?.n, checks.length);
      // Lag tools read Kafka's committed offsets: with the topic quiet they catch up with the database's.
      const inDatabase = await db.sql`
        select partition, next_offset::text as next from consumer_offsets where topic = ${topic}
        order by partition`;
      const expected = inDatabase.map((row) => `${row.partition}:${row.next}`).join(" ");
      let inKafka = "";
      await waitFor(
        async () => (inKafka = await committedInKafka(topic, "crash")) === expected,
        10_000,
        "commits",
      )
        .catch(() => assertEquals(inKafka, expected, "Kafka's committed offsets against the database's"));
      const stopped = await second.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
      console.log(`killed with ${atKill} of ${checks.length} stored`);
    });
  },
);

Deno.test(
  "database connections killed during consumption: nothing lost, nothing twice, the sink stays up",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("pgkill", 2);
      const checks = manyChecks(40_000, 100);
      await produceChecks(topic, checks);
      const sink = startSink(db.url, topic, "pgkill");
      await waitFor(async () => (await count(db.sql, "checks")) > 0, 30_000, "the first rows");
      for (let i = 0; i < 3; i++) {
        await db.sql`
        select pg_terminate_backend(pid) from pg_stat_activity
        where datname = ${db.name} and pid <> pg_backend_pid()`;
        await delay(300);
      }
      await expectStoredExactly(db.sql, checks.length, 60_000, sink);
      const stopped = await sink.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
    });
  },
);

Deno.test(
  "a database stopped and restarted during consumption: the sink waits, then stores everything once",
  options,
  async () => {
    const pg = await startPrivatePostgres();
    const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      await admin`create database sinkdb`;
      const url = pg.url.replace(/\/postgres$/, "/sinkdb");
      const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
      const topic = await createTopic("pgstop", 2);
      const checks = manyChecks(30_000, 100);
      const sink = startSink(url, topic, "pgstop");
      await waitFor(() => sink.stderr.text.includes("joined the group"), 30_000, "the sink to join");
      await produceChecks(topic, checks.slice(0, 10_000));
      await waitFor(async () => (await count(sql, "checks")) > 0, 30_000, "the first rows");
      await sql.end();
      await pg.stop("fast");
      await produceChecks(topic, checks.slice(10_000));
      await delay(4_000);
      await pg.start();
      const after = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await expectStoredExactly(after, checks.length, 90_000, sink);
      } finally {
        await after.end();
      }
      const stopped = await sink.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
      assertMatch(stopped.stderr, /will retry/);
    } finally {
      await admin.end({ timeout: 1 }).catch(() => {});
      await pg.destroy();
    }
  },
);

Deno.test(
  "two sinks in one group over four partitions, one stopped halfway: every check stored once, state exact",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("rebalance", 4);
      const checks = manyChecks(80_000, 400);
      const one = startSink(db.url, topic, "pair");
      const two = startSink(db.url, topic, "pair");
      await waitFor(
        () => one.stderr.text.includes("joined the group") && two.stderr.text.includes("joined the group"),
        30_000,
        "both sinks to join",
      );
      await produceChecks(topic, checks.slice(0, 40_000));
      await waitFor(async () => (await count(db.sql, "checks")) > 5_000, 60_000, "rows from both");
      const stoppedTwo = await two.stop();
      assertEquals(stoppedTwo.code, 0, stoppedTwo.stderr);
      await produceChecks(topic, checks.slice(40_000));
      await expectStoredExactly(db.sql, checks.length, 90_000, one);
      const stoppedOne = await one.stop();
      assertEquals(stoppedOne.code, 0, stoppedOne.stderr);
      await expectStateFollowsChecks(db.sql);
    });
  },
);

Deno.test(
  "migrate reaches the database over TLS with verify-full and refuses a wrong CA",
  options,
  async () => {
    const pg = await startPrivatePostgres({ tls: true });
    try {
      const url = `postgres://postgres@localhost:${pg.port}/postgres?sslmode=verify-full`;
      const good = await runMonitor(["migrate", "--database-url", url, "--database-ca", pg.caFile!]);
      assertEquals(good.code, 0, good.stderr);
      assertMatch(good.stderr, /migrations applied/);
      const again = await runMonitor(["migrate"], { DATABASE_URL: url, MONITOR_DATABASE_CA: pg.caFile! });
      assertEquals(again.code, 0, again.stderr);
      assertMatch(again.stderr, /schema up to date/);
      const wrongCa = await tempFile(
        await Deno.readTextFile(`${CERTS}/wrong-ca.pem`),
        ".pem",
      );
      const bad = await runMonitor(["migrate", "--database-url", url, "--database-ca", wrongCa]);
      assertEquals(bad.code, 1);
      assertMatch(bad.stderr, /certificate/i);
      await Deno.remove(wrongCa);
    } finally {
      await pg.destroy();
    }
  },
);

Deno.test(
  "Kafka's offsets ahead of the database's: the sink reads back and stores every check; records deleted by retention are skipped with a warning",
  options,
  async () => {
    await withDatabase(async (db) => {
      // A group whose offsets in Kafka are past what this (new, empty) database holds: the first batch would
      // skip 40 checks, so it is refused and the partition is read again from the database's offset.
      const ahead = await createTopic("offsets-ahead", 1);
      const checks = manyChecks(100, 10);
      await produceChecks(ahead, checks);
      const admin = plainKafka(BROKER).admin();
      await admin.connect();
      try {
        await admin.setOffsets({
          groupId: "ahead",
          topic: ahead,
          partitions: [{ partition: 0, offset: "40" }],
        });
        const sink = startSink(db.url, ahead, "ahead");
        await expectStoredExactly(db.sql, checks.length, 30_000, sink);
        const stopped = await sink.stop();
        assertEquals(stopped.code, 0, stopped.stderr);
        assertMatch(
          stopped.stderr,
          /a batch would skip messages never stored; reading the partition again.*fetched from offset 40 but the next offset stored is 0/,
        );

        // Records the topic no longer has (retention deleted them before any sink stored them) cannot be
        // read again: the sink says how many it skipped and stores the rest.
        const trimmed = await createTopic("offsets-trimmed", 1);
        await produceChecks(trimmed, checks);
        await admin.fetchTopicMetadata({ topics: [trimmed] }); // deleteTopicRecords needs it loaded
        await admin.deleteTopicRecords({ topic: trimmed, partitions: [{ partition: 0, offset: "30" }] });
        await db.sql`truncate checks`;
        const second = startSink(db.url, trimmed, "trimmed");
        await expectStoredExactly(db.sql, checks.length - 30, 30_000, second);
        const [next] = await db.sql`
          select next_offset::int as n from consumer_offsets where topic = ${trimmed} and partition = 0`;
        assertEquals(next?.n, checks.length);
        const done = await second.stop();
        assertEquals(done.code, 0, done.stderr);
        assertMatch(done.stderr, /messages deleted from Kafka before they were stored.*lost=30/);
      } finally {
        await admin.disconnect();
      }
    });
  },
);

Deno.test(
  "a check the program fails on while the database answers (an error without a code) goes to dead_letters",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("misnamed", 1);
      const checks = manyChecks(500, 10);
      const odd = { ...checks[123]!, site: "renamed" };
      checks[123] = odd;
      const migrated = await runMonitor(["migrate"], { DATABASE_URL: db.url });
      assertEquals(migrated.code, 0, migrated.stderr);
      // The database hands back another name than the one sent: the writer finds no id for the check's site
      // and fails with an error of its own, which says nothing of the database being away.
      await db.sql.unsafe(`
        create function rename_site() returns trigger language plpgsql as $$
        begin
          if new.name = 'renamed' then new.name := 'renamed by a trigger'; end if;
          return new;
        end $$;
        create trigger rename_site before insert on sites for each row execute function rename_site()`);
      await produceChecks(topic, checks);
      const sink = startSink(db.url, topic, "misnamed");
      await expectStoredExactly(db.sql, checks.length - 1, 60_000, sink);
      const letters = await db.sql<{ offset: string; error: string }[]>`
        select "offset"::text, error from dead_letters`;
      assertEquals(letters.map((letter) => letter.offset), ["123"]);
      assertMatch(letters[0]!.error, /^Cannot store check: .*renamed/);
      const stopped = await sink.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
    });
  },
);

Deno.test(
  "a check the database refuses (a constraint) goes to dead_letters by halving the batch; the rest are stored",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("refused", 1);
      const checks = manyChecks(3_000, 20);
      const teapot = { ...checks[1_234]!, status: 418 };
      checks[1_234] = teapot;
      const migrated = await runMonitor(["migrate"], { DATABASE_URL: db.url });
      assertEquals(migrated.code, 0, migrated.stderr);
      // A rule of this database that no decoder knows: the sink learns of it only when the insert fails.
      await db.sql`alter table checks add constraint no_teapots check (status is distinct from 418)`;
      await produceChecks(topic, checks);
      const sink = startSink(db.url, topic, "refused");
      await expectStoredExactly(db.sql, checks.length - 1, 60_000, sink);
      const letters = await db.sql<{ offset: string; error: string; payload: Uint8Array }[]>`
        select "offset"::text, error, payload from dead_letters`;
      assertEquals(letters.map((letter) => letter.offset), ["1234"]);
      assertMatch(letters[0]!.error, /^Cannot store check: the database refused it: .*no_teapots/);
      assertEquals(JSON.parse(new TextDecoder().decode(letters[0]!.payload)), teapot);
      const stopped = await sink.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
      // Halving: a few dozen transactions found it, not one per check.
      const batches = [...stopped.stderr.matchAll(/ batches=(\d+)/g)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
      assertEquals(batches < 100, true, `${batches} transactions`);
    });
  },
);

Deno.test(
  "transactions on the topic: committed checks stored, aborted ones not, and a trailing marker is no lag or stall",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("transactions", 1);
      const sink = startMonitor(
        ["sink", "--brokers", BROKER, "--topic", topic, "--group", "transactions", "--summary-every", "1s"],
        { DATABASE_URL: db.url, MONITOR_STALL_TIMEOUT: "3s" },
      );
      const producer = plainKafka().producer({
        transactionalId: `monitor-test-${crypto.randomUUID()}`,
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await producer.connect();
      try {
        const [kept, dropped, last] = manyChecks(3, 3);
        // Committed (offsets 0 and 1, its marker), aborted (2 and 3), committed, aborted last, with time between
        // so that the sink fetches the aborted ones on their own.
        for (
          const [check, commit] of [[kept, true], [dropped, false], [last, true], [dropped, false]] as const
        ) {
          const transaction = await producer.transaction();
          await transaction.send({ topic, messages: [{ key: check!.site, value: JSON.stringify(check) }] });
          await (commit ? transaction.commit() : transaction.abort());
          await delay(1_500);
        }
        await expectStoredExactly(db.sql, 2, 30_000, sink);
        const ids = await db.sql<{ id: string }[]>`select id::text from checks order by started_at`;
        assertEquals(ids.map((row) => row.id), [kept!.id, last!.id]);
        // Three stall timeouts with nothing more to come: the marker at the end is not lag.
        await delay(9_000);
        const stopped = await sink.stop();
        assertEquals(stopped.code, 0, stopped.stderr);
        assertEquals(/consumer stalled/.test(stopped.stderr), false, stopped.stderr.slice(-3000));
        assertMatch(
          stopped.stderr.split("\n").filter((line) => / summary /.test(line)).at(-1) ?? "",
          / lag=0 /,
        );
      } finally {
        await producer.disconnect();
        await sink.stop("SIGKILL");
      }
    });
  },
);

Deno.test(
  "a write the database refuses for its own state (a lock timeout) is retried whole, never dead-lettered",
  options,
  async () => {
    await withDatabase(async (db) => {
      const topic = await createTopic("locked", 1);
      const checks = manyChecks(200, 10);
      const migrated = await runMonitor(["migrate"], { DATABASE_URL: db.url });
      assertEquals(migrated.code, 0, migrated.stderr);
      // Every statement of the sink gives up on a lock after 200 ms (SQLSTATE 55P03), while a session holds
      // the checks table for 8 s: long enough for the three failed attempts after which a batch that the
      // database refuses for its data is written in halves.
      await db.sql.unsafe(`alter database "${db.name}" set lock_timeout = '200ms'`);
      const sink = startSink(db.url, topic, "locked");
      const holder = postgres(db.url, { max: 1, onnotice: () => {} });
      try {
        await waitFor(() => /joined the group/.test(sink.stderr.text), 30_000, "the sink to join its group");
        const locked = Promise.withResolvers<void>();
        const holding = holder.begin(async (tx) => {
          await tx`lock table checks in access exclusive mode`;
          locked.resolve();
          await delay(8_000);
        });
        await locked.promise;
        await produceChecks(topic, checks);
        await holding;
        await expectStoredExactly(db.sql, checks.length, 60_000, sink);
        assertEquals(await count(db.sql, "dead_letters"), 0);
        const stopped = await sink.stop();
        assertEquals(stopped.code, 0, stopped.stderr);
        assertMatch(stopped.stderr, /cannot store a batch; will retry.*55P03|lock timeout/);
      } finally {
        await sink.stop("SIGKILL");
        await holder.end();
      }
    });
  },
);

Deno.test(
  "sink --no-migrate on a database without this program's migrations: waits, naming them, until they are applied",
  options,
  async () => {
    await withDatabase(async (db) => {
      const old = await Deno.makeTempDir();
      const topic = await createTopic("nomigrate", 1);
      const checks = manyChecks(50, 5);
      const sqlFolder = new URL("../sql/", import.meta.url);
      const latest = [...Deno.readDirSync(sqlFolder)].map((entry) => entry.name).sort().at(-1)!;
      for (const entry of Deno.readDirSync(sqlFolder)) {
        if (entry.name !== latest) {
          await Deno.copyFile(new URL(entry.name, sqlFolder), `${old}/${entry.name}`);
        }
      }
      const sink = startSink(db.url, topic, "nomigrate", { MONITOR_NO_MIGRATE: "true" });
      try {
        await migrate(db.sql, silentLogger, { directory: new URL(`file://${old}/`) });
        await produceChecks(topic, checks);
        await waitFor(
          () => sink.stderr.text.includes(`the database lacks migration ${latest}: run 'monitor migrate'`),
          30_000,
          "the sink to name the migration it waits for",
        );
        assertEquals(await count(db.sql, "checks"), 0);
        await migrate(db.sql, silentLogger);
        await expectStoredExactly(db.sql, checks.length, 60_000, sink);
        const stopped = await sink.stop();
        assertEquals(stopped.code, 0, stopped.stderr);
      } finally {
        await sink.stop("SIGKILL");
        await Deno.remove(old, { recursive: true });
      }
    });
  },
);
