/**
 * `monitor sink` stops within `--drain-timeout` whatever it waits on (a database unreachable at start, one
 * gone mid-consumption, a write stuck on a lock), exits 0, and acknowledges nothing it did not store; its
 * metrics and `/healthz` answer from the start.
 */
import postgres from "postgres";
import { assertEquals, assertMatch } from "./_assert.ts";
import { type RunningMonitor, startMonitor, waitFor } from "./_cli.ts";
import { manyChecks, produceChecks } from "./_checks.ts";
import { BROKER, committedOffsets, createTopic, startPrivateBroker } from "./_kafka.ts";
import { createTestDatabase, startPrivatePostgres } from "./_pg.ts";

const options = { sanitizeOps: false, sanitizeResources: false };
const DRAIN_MS = 3_000;
/** Process exit after the drain: the runtime's own teardown, measured at well under 0.5 s here. */
const EXIT_SLACK_MS = 1_000;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function startSink(
  url: string,
  topic: string,
  group: string,
  metricsPort?: number,
  brokers = BROKER,
): RunningMonitor {
  return startMonitor([
    ...["sink", "--brokers", brokers, "--topic", topic, "--group", group],
    ...["--drain-timeout", `${DRAIN_MS}ms`, "--summary-every", "2s"],
    ...(metricsPort === undefined ? [] : ["--metrics", `127.0.0.1:${metricsPort}`]),
  ], { DATABASE_URL: url });
}

/** Sends SIGTERM and returns the exit code, what was logged, and how long the exit took. */
async function terminate(sink: RunningMonitor): Promise<{ code: number; stderr: string; ms: number }> {
  const started = Date.now();
  const stopped = await sink.stop("SIGTERM");
  return { ...stopped, ms: Date.now() - started };
}

async function count(sql: postgres.Sql): Promise<number> {
  const [row] = await sql`select count(*)::int as n from checks`.catch(() => [{ n: 0 }]);
  return row?.n ?? 0;
}

/** Kafka's committed offsets of the group (the sink's acknowledgements), per partition; 0 for none. */
async function committed(topic: string, group: string): Promise<Map<number, number>> {
  const offsets = await committedOffsets(topic, group);
  return new Map([...offsets].map(([partition, offset]) => [partition, Math.max(0, Number(offset))]));
}

/** The next offset stored in PostgreSQL with the rows, per partition. */
async function stored(sql: postgres.Sql, topic: string): Promise<Map<number, number>> {
  const rows =
    await sql`select partition, next_offset::int as next from consumer_offsets where topic = ${topic}`;
  return new Map(rows.map((row) => [row.partition as number, row.next as number]));
}

/** Nothing acknowledged that was not stored: every committed Kafka offset is at most the stored one. */
async function assertAcknowledgedOnlyStored(sql: postgres.Sql, topic: string, group: string): Promise<void> {
  const inKafka = await committed(topic, group);
  const inDatabase = await stored(sql, topic);
  for (const [partition, offset] of inKafka) {
    assertEquals(
      offset <= (inDatabase.get(partition) ?? 0),
      true,
      `partition ${partition}: Kafka has ${offset} committed, the database ${
        inDatabase.get(partition)
      } stored`,
    );
  }
  // The stored offsets cover exactly the stored rows (one check per message).
  const sum = [...inDatabase.values()].reduce((a, b) => a + b, 0);
  assertEquals(sum, await count(sql));
}

/** Every check of `expected` stored exactly once, with offsets to match. */
async function assertAllStoredOnce(sql: postgres.Sql, topic: string, expected: number, sink: RunningMonitor) {
  await waitFor(async () => (await count(sql)) === expected, 90_000, `${expected} checks stored`).catch(
    (error) => {
      throw new Error(`${error.message}; the sink said:\n${sink.stderr.text.slice(-6000)}`);
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const [row] = await sql`select count(*)::int as n, count(distinct id)::int as d from checks`;
  assertEquals([row?.n, row?.d], [expected, expected]);
  const sum = [...(await stored(sql, topic)).values()].reduce((a, b) => a + b, 0);
  assertEquals(sum, expected);
}

Deno.test(
  "database unreachable at start: metrics from the first second, /healthz 503 with the reason, SIGTERM exits 0 within the drain timeout",
  options,
  async () => {
    const dbPort = freePort(); // nothing listens: connections are refused
    const metricsPort = freePort();
    const topic = await createTopic("unreachable-db");
    const spawned = Date.now();
    const databaseUrl = `postgres://postgres:s3cret-user@127.0.0.1:${dbPort}/none?password=s3cret-query`;
    const sink = startSink(databaseUrl, topic, "unreachable", metricsPort);
    try {
      const url = `http://127.0.0.1:${metricsPort}`;
      await waitFor(
        () => fetch(`${url}/metrics`).then((r) => r.body?.cancel(), () => false).then((r) => r !== false),
        10_000,
        "metrics",
      );
      const served = Date.now() - spawned;
      // Past the attempts that used to be followed by one hanging for two minutes.
      await waitFor(
        () => (sink.stderr.text.match(/cannot connect to the database; will retry/g) ?? []).length >= 6,
        30_000,
        "six attempts",
      );
      const health = await fetch(`${url}/healthz`);
      assertEquals([health.status, await health.text()], [
        503,
        `database unreachable: connect ECONNREFUSED 127.0.0.1:${dbPort}\n`,
      ]);
      assertMatch(await (await fetch(`${url}/metrics`)).text(), /^monitor_sink_database_up 0$/m);
      const stopped = await terminate(sink);
      assertEquals(stopped.code, 0, stopped.stderr);
      assertEquals(stopped.ms < DRAIN_MS + EXIT_SLACK_MS, true, `exit took ${stopped.ms} ms`);
      // Both passwords masked where the URL is logged.
      const logged =
        `connecting to the database url="postgres://postgres:***@127.0.0.1:${dbPort}/none?password=***"`;
      assertEquals(stopped.stderr.includes(logged), true, stopped.stderr);
      assertEquals(stopped.stderr.includes("s3cret"), false, stopped.stderr);
      console.log(`metrics served ${served} ms after spawn; exit ${stopped.ms} ms after SIGTERM`);
    } finally {
      await sink.stop();
    }
  },
);

Deno.test(
  "database stopped mid-consumption: SIGTERM exits 0 within the drain timeout, nothing acknowledged that was not stored; restarted, all stored once",
  options,
  async () => {
    const pg = await startPrivatePostgres();
    const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      await admin`create database sinkdb`;
      const url = pg.url.replace(/\/postgres$/, "/sinkdb");
      const topic = await createTopic("midwrite", 2);
      const checks = manyChecks(40_000, 100);
      await produceChecks(topic, checks);
      let sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
      const first = startSink(url, topic, "midwrite");
      await waitFor(async () => (await count(sql)) > 0, 60_000, "the first rows");
      await sql.end();
      await pg.stop("immediate");
      await waitFor(
        () => first.stderr.text.includes("cannot store a batch; will retry"),
        30_000,
        "a failed write",
      );
      const stopped = await terminate(first);
      assertEquals(stopped.code, 0, stopped.stderr);
      assertEquals(stopped.ms < DRAIN_MS + EXIT_SLACK_MS, true, `exit took ${stopped.ms} ms`);
      await pg.start();
      sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        const atStop = await count(sql);
        await assertAcknowledgedOnlyStored(sql, topic, "midwrite");
        const second = startSink(url, topic, "midwrite");
        await assertAllStoredOnce(sql, topic, checks.length, second);
        assertEquals((await terminate(second)).code, 0);
        console.log(`stopped with ${atStop} of ${checks.length} stored; exit ${stopped.ms} ms after SIGTERM`);
      } finally {
        await sql.end();
      }
    } finally {
      await admin.end({ timeout: 1 }).catch(() => {});
      await pg.destroy();
    }
  },
);

Deno.test(
  "a write stuck on a lock: SIGTERM exits 0 within the drain timeout; the stuck batch is not acknowledged",
  options,
  async () => {
    const db = await createTestDatabase("monitor_shutdown");
    const locker = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const topic = await createTopic("stuck", 1);
      const checks = manyChecks(2_000, 20);
      const first = startSink(db.url, topic, "stuck");
      await waitFor(() => first.stderr.text.includes("joined the group"), 30_000, "the sink to join");
      await produceChecks(topic, checks.slice(0, 1_000));
      await waitFor(async () => (await count(db.sql)) === 1_000, 30_000, "the first thousand");
      // Hold a lock every write needs, and give the sink a batch to write.
      const held = locker.begin(async (tx) => {
        await tx`lock table checks in access exclusive mode`;
        await produceChecks(topic, checks.slice(1_000));
        await waitFor(
          async () => {
            const [row] = await db.sql`
              select count(*)::int as n from pg_stat_activity
              where datname = ${db.name} and wait_event_type = 'Lock'`;
            return (row?.n ?? 0) > 0;
          },
          30_000,
          "a write waiting for the lock",
        );
        const stopped = await terminate(first);
        assertEquals(stopped.code, 0, stopped.stderr);
        assertEquals(stopped.ms < DRAIN_MS + EXIT_SLACK_MS, true, `exit took ${stopped.ms} ms`);
      });
      await held;
      await assertAcknowledgedOnlyStored(db.sql, topic, "stuck");
      assertEquals(await count(db.sql), 1_000);
      const second = startSink(db.url, topic, "stuck");
      await assertAllStoredOnce(db.sql, topic, checks.length, second);
      assertEquals((await terminate(second)).code, 0);
    } finally {
      await locker.end({ timeout: 1 });
      await db.drop();
    }
  },
);

Deno.test(
  "a write held up longer than the session timeout: the sink keeps its partitions (heartbeats, 15 s deadline) and stores everything once",
  options,
  async () => {
    const db = await createTestDatabase("monitor_slow");
    const locker = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const topic = await createTopic("slow", 1);
      const checks = manyChecks(2_000, 20);
      const sink = startSink(db.url, topic, "slow");
      await waitFor(() => sink.stderr.text.includes("joined the group"), 30_000, "the sink to join");
      await produceChecks(topic, checks.slice(0, 1_000));
      await waitFor(async () => (await count(db.sql)) === 1_000, 30_000, "the first thousand");
      await locker.begin(async (tx) => {
        await tx`lock table checks in access exclusive mode`;
        await produceChecks(topic, checks.slice(1_000));
        // Longer than the consumer's 20 s session timeout.
        await new Promise((resolve) => setTimeout(resolve, 25_000));
      });
      await assertAllStoredOnce(db.sql, topic, checks.length, sink);
      const stopped = await terminate(sink);
      assertEquals(stopped.code, 0, stopped.stderr);
      assertMatch(stopped.stderr, /Cannot store a batch: no answer from the database within 15000 ms/);
      // One membership throughout: the group never evicted it.
      assertEquals(stopped.stderr.match(/joined the group/g)?.length, 1, stopped.stderr);
      assertEquals(stopped.stderr.includes("consumer crashed"), false, stopped.stderr);
    } finally {
      await locker.end({ timeout: 1 });
      await db.drop();
    }
  },
);

Deno.test("broker gone mid-consumption: SIGTERM exits 0 within the drain timeout", options, async () => {
  const db = await createTestDatabase("monitor_nobroker");
  const broker = await startPrivateBroker();
  try {
    const topic = await createTopic("gone", 2, broker.brokers);
    await produceChecks(topic, manyChecks(1_000, 10), broker.brokers);
    const sink = startSink(db.url, topic, "gone", undefined, broker.brokers);
    await waitFor(async () => (await count(db.sql)) === 1_000, 60_000, "every check stored");
    await broker.stop();
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // kafkajs is reconnecting by now
    const stopped = await terminate(sink);
    assertEquals(stopped.code, 0, stopped.stderr);
    assertEquals(stopped.ms < DRAIN_MS + EXIT_SLACK_MS, true, `exit took ${stopped.ms} ms`);
    console.log(`exit ${stopped.ms} ms after SIGTERM with the broker gone`);
  } finally {
    await broker.destroy();
    await db.drop();
  }
});

Deno.test(
  "an idle sink's /healthz answers 503 with the reason while its database is stopped, and ok once it is back",
  options,
  async () => {
    const pg = await startPrivatePostgres();
    const metricsPort = freePort();
    try {
      const topic = await createTopic("idle");
      const sink = startSink(pg.url, topic, "idle", metricsPort);
      const healthz = async () => {
        const response = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
        return { status: response.status, body: await response.text() };
      };
      try {
        await waitFor(() => sink.stderr.text.includes("joined the group"), 30_000, "the sink to join");
        assertEquals(await healthz(), { status: 200, body: "ok\n" });
        await pg.stop("fast");
        await waitFor(async () => (await healthz()).status === 503, 25_000, "503");
        assertMatch((await healthz()).body, /^database unreachable: .+\n$/);
        assertMatch(
          await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
          /^monitor_sink_database_up 0$/m,
        );
        await pg.start();
        await waitFor(async () => (await healthz()).status === 200, 25_000, "ok again");
        assertEquals(await healthz(), { status: 200, body: "ok\n" });
      } finally {
        const stopped = await terminate(sink);
        assertEquals(stopped.code, 0, stopped.stderr);
      }
    } finally {
      await pg.destroy();
    }
  },
);
