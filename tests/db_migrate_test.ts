import postgres from "postgres";
import { assertEquals, assertRejects } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { migrate, MIGRATIONS_DIR, readMigrations } from "../src/db/migrate.ts";
import { createLogger, silentLogger } from "../src/log.ts";
import { latencyBucket, latencyMidpoint } from "../src/db/latency.ts";
import { writeBatch } from "../src/db/writer.ts";
import type { CheckResult } from "../src/message.ts";

async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function relations(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ name: string; kind: string }[]>`
    select relname as name, relkind as kind from pg_class
    where relnamespace = 'public'::regnamespace and relkind in ('r', 'p', 'v')
    order by relname`;
  return rows.map((row) => `${row.name} ${row.kind}`);
}

/** A folder of migration files, removed by the caller. */
async function migrationsFolder(files: Record<string, string>): Promise<URL> {
  const dir = await Deno.makeTempDir({ prefix: "monitor-migrations-" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  return new URL(`file://${dir}/`);
}

Deno.test("migrate() applies the files of sql/ once and a second run applies nothing", async () => {
  const db = await createTestDatabase();
  try {
    const lines: string[] = [];
    const log = createLogger({ format: "json", write: (line) => lines.push(line) });
    const files = await readMigrations();
    assertEquals(files[0]?.name, "0001_schema.sql");
    assertEquals(await migrate(db.sql, log), files.map((file) => file.name));
    assertEquals(
      lines.map((line) => JSON.parse(line)).map(({ level, message, migration }) => ({
        level,
        message,
        migration,
      })),
      files.map((file) => ({ level: "info", message: "applying migration", migration: file.name })),
    );
    assertEquals(await relations(db.sql), [
      "agents r",
      "checks p",
      "checks_default r",
      "consumer_offsets r",
      "dead_letters r",
      "incidents v",
      "location_state r",
      "location_status v",
      "locations r",
      "rollup_daily p",
      "rollup_daily_default r",
      "rollup_day_to_hour p",
      "rollup_day_to_hour_default r",
      "rollup_day_to_hour_from r",
      "rollup_hourly p",
      "rollup_hourly_default r",
      "rollup_month_to_date p",
      "rollup_month_to_date_default r",
      "rollup_monthly p",
      "rollup_monthly_default r",
      "schema_migrations r",
      "site_daily p",
      "site_daily_default r",
      "site_incidents r",
      "site_state r",
      "site_status v",
      "sites r",
    ]);
    const recorded = await db.sql<{ name: string; checksum: string }[]>`
      select name, checksum from schema_migrations order by name`;
    const expected = [];
    for (const file of files) {
      expected.push({
        name: file.name,
        checksum: await sha256(await Deno.readTextFile(new URL(file.name, MIGRATIONS_DIR))),
      });
    }
    assertEquals([...recorded], expected);

    assertEquals(await migrate(db.sql, log), []);
    assertEquals((await db.sql`select count(*)::int as n from schema_migrations`)[0]?.n, files.length);
  } finally {
    await db.drop();
  }
});

Deno.test("two clients migrating one database at once apply each migration once", async () => {
  const db = await createTestDatabase();
  const clients = [
    postgres(db.url, { max: 1, onnotice: () => {} }),
    postgres(db.url, { max: 1, onnotice: () => {} }),
  ];
  try {
    const results = await Promise.all(clients.map((client) => migrate(client, silentLogger)));
    const names = (await readMigrations()).map((file) => file.name);
    assertEquals(results.sort((a, b) => a.length - b.length), [[], names]);
    assertEquals((await db.sql`select count(*)::int as n from schema_migrations`)[0]?.n, names.length);
  } finally {
    await Promise.all(clients.map((client) => client.end()));
    await db.drop();
  }
});

Deno.test("migrate() refuses a migration changed after it was applied, and applies nothing", async () => {
  const db = await createTestDatabase();
  const original = "create table a (x int);\n";
  const directory = await migrationsFolder({ "0001_a.sql": original });
  try {
    assertEquals(await migrate(db.sql, silentLogger, { directory }), ["0001_a.sql"]);
    const changed = "create table a (x bigint);\n";
    await Deno.writeTextFile(new URL("0001_a.sql", directory), changed);
    await Deno.writeTextFile(new URL("0002_b.sql", directory), "create table b (y int);\n");
    await assertRejects(
      () => migrate(db.sql, silentLogger, { directory }),
      Error,
      `Cannot migrate: migration '0001_a.sql' was changed after it was applied: checksum ${await sha256(
        original,
      )} in the database, ${await sha256(changed)} in the file`,
    );
    assertEquals(await relations(db.sql), ["a r", "schema_migrations r"]);
  } finally {
    await Deno.remove(directory, { recursive: true });
    await db.drop();
  }
});

Deno.test("a failing migration leaves the database as it was", async () => {
  const db = await createTestDatabase();
  const directory = await migrationsFolder({
    "0002_broken.sql": "create table c (z int);\ncreate tabel d (w int);\n",
    "0001_ok.sql": "create table a (x int);\ninsert into a values (1);\n",
  });
  try {
    const error = await assertRejects(() => migrate(db.sql, silentLogger, { directory }), Error);
    assertEquals((error as Error & { code?: string }).code, "42601");
    assertEquals(await relations(db.sql), []);
    await Deno.remove(new URL("0002_broken.sql", directory));
    assertEquals(await migrate(db.sql, silentLogger, { directory }), ["0001_ok.sql"]);
  } finally {
    await Deno.remove(directory, { recursive: true });
    await db.drop();
  }
});

Deno.test("readMigrations() rejects a badly named file and a repeated number", async () => {
  const badName = await migrationsFolder({ "0001_a.sql": "", "2_b.sql": "", "notes.txt": "" });
  const repeated = await migrationsFolder({ "0001_a.sql": "", "0001_b.sql": "" });
  try {
    await assertRejects(
      () => readMigrations(badName),
      SyntaxError,
      "Cannot read migrations: file name '2_b.sql' must look like '0001_words.sql' (digits, underscore, a-z, 0-9)",
    );
    await assertRejects(
      () => readMigrations(repeated),
      RangeError,
      /^Cannot read migrations: '0001_[ab].sql' and '0001_[ab].sql' have the same number$/,
    );
  } finally {
    await Deno.remove(badName, { recursive: true });
    await Deno.remove(repeated, { recursive: true });
  }
});

Deno.test("site_uptime() counts checks and response times per site and bucket", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await migrate(sql, silentLogger);
    const rows: [string, string, number, boolean][] = [
      ["alpha", "2026-11-20T10:00:00Z", 10, true],
      ["alpha", "2026-11-20T10:15:00Z", 20, true],
      ["alpha", "2026-11-20T10:30:00Z", 30, true],
      ["alpha", "2026-11-20T10:45:00Z", 40, true],
      ["alpha", "2026-11-20T10:59:59Z", 10000, false],
      ["alpha", "2026-11-20T11:00:00Z", 100, true],
      ["alpha", "2026-11-20T11:30:00Z", 200, true],
      ["beta", "2026-11-20T10:10:00Z", 5000, false],
      ["beta", "2026-11-21T00:00:00Z", 50, true],
    ];
    const checks = rows.map(([site, startedAt, duration, up], i): CheckResult => ({
      v: 1,
      id: `01937a00-0000-7000-8000-${String(i + 1).padStart(12, "0")}`,
      site,
      url: `https://${site}.example/`,
      agent: "probe-1",
      region: null,
      scheduled_at: startedAt,
      started_at: startedAt,
      up,
      status: up ? 200 : null,
      ttfb_ms: null,
      duration_ms: duration,
      bytes: null,
      regex: null,
      regex_matched: null,
      cert_expires_at: null,
      error: up ? null : { kind: "timeout", message: "no response" },
      interval_ms: 60_000,
    }));
    await writeBatch(sql, {
      group: "g",
      topic: "t",
      checks: checks.map((check, i) => ({ partition: 0, offset: String(i), check })),
      deadLetters: [],
      progress: [{ partition: 0, firstOffset: "0", nextOffset: String(checks.length) }],
    }, { now: new Date("2026-11-21T00:00:01Z") });
    // Percentiles are the midpoints of the histogram buckets holding the checks of rank floor(p * (n - 1)).
    const p = (ms: number) => latencyMidpoint(latencyBucket(ms)).toFixed(1);
    const shape = (list: postgres.Row[]) =>
      list.map((
        r,
      ) => [r.site, r.bucket.toISOString(), r.checks, r.up_checks, r.uptime_percent, r.p50, r.p95, r.p99]);
    const columns = sql`
      site, bucket, checks::int, up_checks::int, uptime_percent::text, p50_ms::numeric(10, 1)::text as p50,
      p95_ms::numeric(10, 1)::text as p95, p99_ms::numeric(10, 1)::text as p99`;
    assertEquals(
      shape(
        await sql`select ${columns} from site_uptime(null, '2026-11-20T00:00:00Z', '2026-11-22T00:00:00Z')`,
      ),
      [
        ["alpha", "2026-11-20T10:00:00.000Z", 5, 4, "80.000", p(20), p(30), p(30)],
        ["alpha", "2026-11-20T11:00:00.000Z", 2, 2, "100.000", p(100), p(100), p(100)],
        ["beta", "2026-11-20T10:00:00.000Z", 1, 0, "0.000", null, null, null],
        ["beta", "2026-11-21T00:00:00.000Z", 1, 1, "100.000", p(50), p(50), p(50)],
      ],
    );
    // A range that starts inside an hour: the partial hour comes from the raw checks.
    assertEquals(
      shape(
        await sql`select ${columns} from site_uptime('alpha', '2026-11-20T10:30:00Z', '2026-11-20T11:00:00Z')`,
      ),
      [["alpha", "2026-11-20T10:00:00.000Z", 3, 2, "66.667", p(30), p(30), p(30)]],
    );
    assertEquals(
      shape(
        await sql`select ${columns} from site_uptime(null, '2026-11-20T00:00:00Z', '2026-11-21T00:00:00Z', '1 day')`,
      ),
      [
        ["alpha", "2026-11-20T00:00:00.000Z", 7, 6, "85.714", p(30), p(100), p(100)],
        ["beta", "2026-11-20T00:00:00.000Z", 1, 0, "0.000", null, null, null],
      ],
    );
  } finally {
    await db.drop();
  }
});

Deno.test("migrating a database with checks carries them into location state, site state and rollups", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  const files = await readMigrations();
  const folder = await migrationsFolder(
    Object.fromEntries(files.filter((f) => f.number <= 2).map((f) => [f.name, f.text])),
  );
  try {
    await migrate(sql, silentLogger, { directory: folder });
    await sql`insert into sites (name, url, first_seen, last_seen) values ('old', 'https://old.example/', now(), now())`;
    await sql`insert into agents (name, region) values ('probe-1', 'eu'), ('probe-2', null)`;
    // eu: up, up, down, down; probe-2: down, up.
    const rows: [number, string, boolean][] = [
      [1, "2026-11-20T10:00:00Z", true],
      [1, "2026-11-20T10:01:00Z", true],
      [1, "2026-11-20T10:02:00Z", false],
      [1, "2026-11-20T11:03:00Z", false],
      [2, "2026-11-20T10:00:30Z", false],
      [2, "2026-11-20T10:01:30Z", true],
    ];
    for (const [agent, at, up] of rows) {
      await sql`
        insert into checks (id, site_id, agent_id, scheduled_at, started_at, up, duration_ms, error_kind)
        values (gen_random_uuid(), 1, ${agent}, ${at}, ${at}, ${up}, 25, ${
        up ? null : "timeout"
      }::check_error_kind)`;
    }
    assertEquals(await migrate(sql, silentLogger), files.filter((f) => f.number > 2).map((f) => f.name));
    const locations = await sql`
      select location, up, since, consecutive_failures from location_status order by location`;
    assertEquals(locations.map((l) => [l.location, l.up, l.since.toISOString(), l.consecutive_failures]), [
      ["eu", false, "2026-11-20T10:02:00.000Z", 2],
      ["probe-2", true, "2026-11-20T10:01:30.000Z", 0],
    ]);
    assertEquals(
      [...await sql`select site, worst_state, locations, ended_at from incidents`],
      [{ site: "old", worst_state: "degraded", locations: ["eu"], ended_at: null }],
    );
    const uptime = await sql`
      select bucket, checks::int, up_checks::int from site_uptime('old', '2026-11-20', '2026-11-21', '1 hour')`;
    assertEquals(uptime.map((u) => [u.bucket.toISOString(), u.checks, u.up_checks]), [
      ["2026-11-20T10:00:00.000Z", 5, 3],
      ["2026-11-20T11:00:00.000Z", 1, 0],
    ]);
  } finally {
    await Deno.remove(new URL(folder), { recursive: true });
    await db.drop();
  }
});
