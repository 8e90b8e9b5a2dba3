/**
 * Micro-benchmark of the sink's database path, on a scratch database of its own (dropped at the end):
 *
 * 1. inserting `checks` rows only, one transaction per batch: `INSERT … SELECT FROM unnest(…)` versus `COPY` into
 *    a temporary staging table (made per transaction, or kept per connection) then `INSERT … SELECT`;
 * 2. `writeBatch()` end to end (offsets, sites, agents, locations, checks, location state, incidents, rollups),
 *    which is what the sink runs;
 * 3. the storage cost of a check: one million rows over ten daily partitions, table and indexes.
 *
 * Run: `deno run -A bench/sink/db_insert.ts` (PostgreSQL as for the tests: TEST_DATABASE_URL or 127.0.0.1:5432).
 * Every loop is bounded; the whole run takes about a minute.
 *
 * @module
 */
import type postgres from "postgres";
import { createTestDatabase } from "../../dev/services.ts";
import { connectDatabase } from "../../src/db/connect.ts";
import { type CheckRow, insertChecksUnnest } from "../../src/db/check_rows.ts";
import { insertChecksCopy, type Staging } from "./copy.ts";
import { migrate } from "../../src/db/migrate.ts";
import { maintainPartitions } from "../../src/db/partitions.ts";
import type { Batch } from "../../src/db/batch.ts";
import { writeBatch } from "../../src/db/writer.ts";
import { silentLogger as log } from "../../src/log.ts";
import { newCheckId } from "../../src/check_id.ts";
import type { CheckResult } from "../../src/message.ts";
import { readCpuSeconds } from "../procfs.ts";

const SITES = 1000;
const RUNS = 3; // each figure is the best of RUNS measurements: other work on the machine only slows a run down
const ROWS_PER_RUN = 100_000;
const ROWS_FOR_SIZE = 1_000_000;

const day = Math.floor(Date.now() / 86_400_000) * 86_400_000;
let clock = day; // started_at of the next generated check: today, 1 ms apart

function row(n: number): CheckRow {
  const up = n % 50 !== 0;
  const startedAt = new Date(clock++).toISOString();
  return {
    id: newCheckId(clock),
    siteId: (n % SITES) + 1,
    agentId: 1,
    scheduledAt: startedAt,
    startedAt,
    up,
    status: up ? 200 : null,
    ttfbMs: up ? 20 + (n % 180) : null,
    durationMs: up ? 40 + (n % 400) + 0.25 : 10000,
    bytes: up ? 5000 + (n % 40000) : null,
    regexMatched: null,
    certExpiresAt: "2027-02-01T00:00:00Z",
    errorKind: up ? null : "timeout",
    errorMessage: up ? null : "no response within 10000 ms",
  };
}

function check(n: number): CheckResult {
  const r = row(n);
  return {
    v: 1,
    id: r.id,
    site: `site-${r.siteId}`,
    url: `https://site-${r.siteId}.example/`,
    agent: "bench-agent",
    region: "local",
    scheduled_at: r.scheduledAt,
    started_at: r.startedAt,
    up: r.up,
    status: r.status,
    ttfb_ms: r.ttfbMs,
    duration_ms: r.durationMs,
    bytes: r.bytes,
    regex: null,
    regex_matched: null,
    cert_expires_at: r.certExpiresAt,
    error: r.up ? null : { kind: "timeout", message: "no response within 10000 ms" },
    interval_ms: 60_000,
  };
}

type Insert = (tx: postgres.TransactionSql, rows: readonly CheckRow[]) => Promise<number>;

/** Rows per second of `insert`, one transaction per batch, over ROWS_PER_RUN rows (after one warm-up batch). */
async function rowsPerSecond(sql: postgres.Sql, insert: Insert, batchSize: number): Promise<number> {
  const batches = Math.max(1, Math.round(ROWS_PER_RUN / batchSize));
  const make = () => Array.from({ length: batchSize }, (_, i) => row(i));
  const warmUp = make();
  await sql.begin((tx) => insert(tx, warmUp));
  let elapsed = 0;
  for (let b = 0; b < batches; b++) {
    const rows = make(); // built outside the clock: the consumer has decoded messages already
    const start = performance.now();
    const inserted = await sql.begin((tx) => insert(tx, rows));
    elapsed += performance.now() - start;
    if (inserted !== batchSize) {
      throw new Error(`Cannot benchmark: ${inserted} of ${batchSize} rows inserted`);
    }
  }
  return (batches * batchSize) / (elapsed / 1000);
}

/** Checks per second of writeBatch() end to end (the Batch, of decoded checks, is built outside the clock). */
async function writeBatchPerSecond(sql: postgres.Sql, batchSize: number, group: string): Promise<number> {
  const batches = Math.max(1, Math.round(ROWS_PER_RUN / batchSize));
  let offset = 0;
  const make = (): Batch => {
    const first = offset;
    const checks = Array.from({ length: batchSize }, (_, i) => ({
      partition: 0,
      offset: String(offset++),
      check: check(i),
    }));
    return {
      group,
      topic: "bench",
      checks,
      deadLetters: [],
      progress: [{ partition: 0, firstOffset: String(first), nextOffset: String(offset) }],
    };
  };
  await writeBatch(sql, make());
  let elapsed = 0;
  for (let b = 0; b < batches; b++) {
    const batch = make();
    const start = performance.now();
    const result = await writeBatch(sql, batch);
    elapsed += performance.now() - start;
    if (result.stored !== batchSize) {
      throw new Error(`Cannot benchmark: ${result.stored} of ${batchSize} stored`);
    }
  }
  return (batches * batchSize) / (elapsed / 1000);
}

/** Bytes per stored check (heap + TOAST + indexes, summed over the partitions) at ROWS_FOR_SIZE rows. */
async function bytesPerCheck(sql: postgres.Sql) {
  await sql`truncate checks`;
  const start = new Date(day - 20 * 86_400_000);
  await maintainPartitions(sql, { now: start, aheadDays: 10, retentionDays: 0, log });
  const perSite = ROWS_FOR_SIZE / SITES;
  const step = (10 * 86_400) / perSite; // seconds between two checks of one site: 10 days of checks
  // In time order, every site interleaved: the order in which the sink inserts them.
  await sql`
    insert into checks (started_at, scheduled_at, cert_expires_at, site_id, bytes, ttfb_ms, duration_ms,
                        error_kind, agent_id, status, up, regex_matched, id, error_message)
    select t, t - interval '3 ms', timestamptz '2027-02-01', s,
           case when down then null else 5000 + (k * 7919 + s) % 40000 end,
           case when down then null else 20 + (k + s) % 180 end,
           case when down then 10000 else 40 + (k * 31 + s) % 400 + 0.25 end,
           case when down then 'timeout'::check_error_kind end, 1 + s % 3,
           case when down then null else 200 end, not down, null, gen_random_uuid(),
           case when down then 'no response within 10000 ms' end
    from generate_series(0, ${perSite - 1}) k
    cross join generate_series(1, ${SITES}) s
    cross join lateral (select ${start} + make_interval(secs => k * ${step}) + s * interval '1 ms' as t,
                               (k + s) % 50 = 0 as down) x
    order by k, s`;
  await sql`vacuum analyze checks`;
  const [size] = await sql<{ rows: string; heap: string; indexes: string; total: string; tuple: string }[]>`
    select (select count(*) from checks) as rows,
           sum(pg_table_size(c.oid)) as heap, sum(pg_indexes_size(c.oid)) as indexes,
           sum(pg_total_relation_size(c.oid)) as total,
           (select avg(pg_column_size(c2.*))::numeric(6, 1) from checks c2) as tuple
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'checks'::regclass`;
  const rows = Number(size!.rows);
  return {
    rows,
    heap: Number(size!.heap) / rows,
    indexes: Number(size!.indexes) / rows,
    total: Number(size!.total) / rows,
    tuple: Number(size!.tuple),
  };
}

const db = await createTestDatabase("monitor_bench");
// The sink's own pool (connectDatabase turns Nagle's algorithm off, which COPY needs: see src/db/connect.ts).
const sql = await connectDatabase({ url: db.url, log });
try {
  await migrate(sql, log);
  await maintainPartitions(sql, { now: new Date(day), aheadDays: 1, retentionDays: 0, log });
  await sql`
    insert into sites (name, url, first_seen, last_seen)
    select 'site-' || i, 'https://site-' || i || '.example/', now(), now() from generate_series(1, ${SITES}) i`;
  await sql`insert into agents (name, region) values ('bench-agent', 'local')`;
  const [server] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
  console.log(
    `PostgreSQL ${server?.version}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; ` +
      `${ROWS_PER_RUN.toLocaleString("en")} rows per measurement, one transaction per batch; ` +
      `load average ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`,
  );

  // `--write-only`: only the writeBatch() figures (what the sink runs), for comparing two versions quickly.
  const writeOnly = Deno.args.includes("--write-only");
  const copy = (staging: Staging): Insert => (tx, rows) => insertChecksCopy(tx, rows, staging);
  const methods: [string, Insert][] = [
    ["unnest: INSERT … SELECT FROM unnest($1::uuid[], …)", insertChecksUnnest],
    ["copy:   COPY to temp table (on commit drop) + INSERT … SELECT", copy("drop")],
    ["copy:   COPY to temp table (kept, on commit delete rows) + INSERT", copy("reuse")],
  ];
  if (!writeOnly) {
    console.log(`\nchecks rows only (rows/s, best of ${RUNS})${" ".repeat(24)}batch 1,000    batch 10,000`);
  }
  for (const [name, insert] of writeOnly ? [] : methods) {
    const small = await best(() => rowsPerSecond(sql, insert, 1000));
    const large = await best(() => rowsPerSecond(sql, insert, 10_000));
    console.log(`${name.padEnd(64)} ${fmt(small).padStart(9)} ${fmt(large).padStart(14)}`);
  }

  console.log(`\nwriteBatch() end to end, 1,000 sites (checks/s, best of ${RUNS})`);
  for (const size of [500, 1000, 10_000]) {
    let run = 0;
    const before = await cpuSeconds(sql);
    const rate = await best(() => writeBatchPerSecond(sql, size, `g${size}-${run++}`));
    const after = await cpuSeconds(sql);
    // Every run writes one warm-up batch and then ROWS_PER_RUN checks.
    const per100k = (key: "client" | "server") =>
      ((after[key] - before[key]) / (RUNS * (ROWS_PER_RUN + size)) * 100_000).toFixed(2);
    console.log(
      `  batch ${size.toLocaleString("en").padStart(6)}: ${fmt(rate).padStart(7)}   CPU s per 100k checks: ` +
        `client ${per100k("client")} + PostgreSQL backends ${per100k("server")}`,
    );
  }

  if (!writeOnly) {
    const size = await bytesPerCheck(sql);
    console.log(
      `\nstorage at ${size.rows.toLocaleString("en")} checks over 12 daily partitions (after VACUUM):`,
    );
    console.log(
      `  ${size.total.toFixed(1)} bytes/check = table ${size.heap.toFixed(1)} + primary key ${
        size.indexes.toFixed(1)
      }; average row ${size.tuple} bytes before header alignment and line pointer`,
    );
  }
} finally {
  await sql.end({ timeout: 5 });
  await db.drop();
}

/** CPU seconds used so far by this process and by the PostgreSQL backends of the bench database. */
async function cpuSeconds(sql: postgres.Sql): Promise<{ client: number; server: number }> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where datname = current_database()`;
  const server = rows.reduce((sum, row) => sum + (readCpuSeconds(row.pid) ?? 0), 0);
  return { client: readCpuSeconds(Deno.pid) ?? 0, server };
}

async function best(measure: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let run = 0; run < RUNS; run++) top = Math.max(top, await measure());
  return top;
}

function fmt(perSecond: number): string {
  return Math.round(perSecond).toLocaleString("en");
}
