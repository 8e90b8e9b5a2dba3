/**
 * The two baselines of the sink benchmark: (1) kafkajs reading and decoding the topic with no database, with
 * the sink's consumer settings; (2) the same rows copied straight into the `checks` table of a freshly
 * migrated database with `COPY … FROM STDIN`, site and agent ids resolved beforehand.
 *
 * @module
 */
import type { Consumer } from "kafkajs";
import { connectDatabase } from "../../src/db/connect.ts";
import { migrate } from "../../src/db/migrate.ts";
import { maintainPartitions } from "../../src/db/partitions.ts";
import { silentLogger } from "../../src/log.ts";
import { decodeCheck } from "../../src/message.ts";
import { createTestDatabase } from "../../dev/services.ts";
import { plainKafka } from "../../dev/services.ts";
import { AGENTS, benchCheck, type CheckPlan, siteName, siteUrl } from "./data.ts";
import { toCheckRow } from "../../src/db/check_rows.ts";
import { checkIdToUuid } from "../../src/check_id.ts";
import type { CheckRow } from "../../src/db/check_rows.ts";
import { readCpuSeconds } from "../procfs.ts";
import { copyRows } from "./copy.ts";
import { SINK_FETCH as SINK_CONSUMER_FETCH } from "../../src/sink/group_consumer.ts";

/** The fetch settings of the sink's consumer (src/sink/group_consumer.ts), so the baseline reads the same way. */
export interface FetchSettings {
  readonly maxWaitTimeInMs: number;
  readonly maxBytesPerPartition: number;
  readonly maxBytes: number;
  readonly partitionsConsumedConcurrently: number;
}

/** What src/sink/group_consumer.ts sets. */
export const SINK_FETCH: FetchSettings = SINK_CONSUMER_FETCH;

/** What {@linkcode rawConsume} measured. */
export interface RawConsumeResult {
  readonly checks: number;
  readonly decodeErrors: number;
  readonly batches: number;
  readonly meanBatch: number;
  readonly largestBatch: number;
  /** From joining the group to the last message decoded. */
  readonly secondsFromJoin: number;
  /** From the first batch handed over to the last message decoded. */
  readonly secondsFromFirst: number;
  readonly checksPerSecond: number;
  readonly checksPerSecondFromFirst: number;
  /** CPU seconds of this process while consuming. */
  readonly cpuSeconds: number;
}

/**
 * Consumes `count` messages of `topic` from the beginning in a new consumer group, decoding each value with
 * `decodeCheck` (as the sink does) and storing nothing. Gives up after `timeoutMs`.
 */
export async function rawConsume(
  brokers: string,
  topic: string,
  count: number,
  settings: FetchSettings = SINK_FETCH,
  timeoutMs = 180_000,
): Promise<RawConsumeResult> {
  const consumer: Consumer = plainKafka(brokers).consumer({
    groupId: `bench-raw-${crypto.randomUUID()}`,
    sessionTimeout: 20_000,
    heartbeatInterval: 3_000,
    maxWaitTimeInMs: settings.maxWaitTimeInMs,
    maxBytesPerPartition: settings.maxBytesPerPartition,
    maxBytes: settings.maxBytes,
    allowAutoTopicCreation: false,
  });
  let joinAt = 0;
  let firstAt = 0;
  let lastAt = 0;
  let decoded = 0;
  let errors = 0;
  let batches = 0;
  let largest = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => joinAt ||= performance.now());
  await consumer.connect();
  const cpuBefore = readCpuSeconds(Deno.pid) ?? 0;
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Cannot consume '${topic}': ${decoded} of ${count} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: settings.partitionsConsumedConcurrently,
        eachBatch: ({ batch }) => {
          firstAt ||= performance.now();
          batches++;
          largest = Math.max(largest, batch.messages.length);
          for (const message of batch.messages) {
            try {
              decodeCheck(message.value);
            } catch {
              errors++;
            }
            decoded++;
          }
          if (decoded >= count && lastAt === 0) {
            lastAt = performance.now();
            clearTimeout(timer);
            resolve();
          }
          return Promise.resolve();
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  const cpuSeconds = (readCpuSeconds(Deno.pid) ?? 0) - cpuBefore;
  const secondsFromJoin = (lastAt - joinAt) / 1000;
  const secondsFromFirst = (lastAt - firstAt) / 1000;
  return {
    checks: decoded,
    decodeErrors: errors,
    batches,
    meanBatch: Math.round(decoded / batches),
    largestBatch: largest,
    secondsFromJoin,
    secondsFromFirst,
    checksPerSecond: decoded / secondsFromJoin,
    checksPerSecondFromFirst: decoded / secondsFromFirst,
    cpuSeconds: Math.round(cpuSeconds * 100) / 100,
  };
}

/** What {@linkcode rawCopy} measured. */
export interface RawCopyResult {
  readonly rows: number;
  readonly copies: number;
  /** Time spent formatting and copying (building the row objects is not counted). */
  readonly seconds: number;
  readonly rowsPerSecond: number;
  /** Rows counted in the table afterwards. */
  readonly counted: number;
  /** Size of the checks partitions with their indexes, MB. */
  readonly tableMb: number;
  /** CPU seconds of the PostgreSQL backend that ran the COPY. */
  readonly backendCpuSeconds: number | null;
  /** CPU seconds of this process (formatting, sending) during the COPYs. */
  readonly clientCpuSeconds: number;
}

// The sink's connections fetch no array types (src/db/connect.ts), so arrays go as literals; the bench's names
// and URLs hold no quote or backslash.
const textLiteral = (values: readonly string[]) => `{${values.map((value) => `"${value}"`).join(",")}}`;

/**
 * Copies the plan's checks (rebuilt by index, so exactly those on the topic) into the `checks` table of a new
 * database, `chunk` rows per COPY statement, and drops the database afterwards.
 */
export async function rawCopy(plan: CheckPlan, chunk = 100_000): Promise<RawCopyResult> {
  const db = await createTestDatabase("monitor_bench_copy");
  const sql = await connectDatabase({ url: db.url, log: silentLogger, max: 1 });
  try {
    await migrate(sql, silentLogger);
    await maintainPartitions(sql, { log: silentLogger });
    const sites = await sql<{ id: number; name: string }[]>`
      insert into sites (name, url, regex, first_seen, last_seen)
      select name, url, null, now(), now()
      from unnest(
        ${textLiteral(Array.from({ length: plan.sites }, (_, i) => siteName(i)))}::text[],
        ${textLiteral(Array.from({ length: plan.sites }, (_, i) => siteUrl(i)))}::text[]
      ) as t(name, url)
      returning id, name`;
    const siteIds = new Map(sites.map((row) => [row.name, row.id]));
    const agentIds = new Map<string, number>();
    for (const agent of AGENTS) {
      const [row] = await sql<{ id: number }[]>`
        insert into agents (name, region) values (${agent.name}, ${agent.region}) returning id`;
      agentIds.set(agent.name, row!.id);
    }
    const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const backendBefore = readCpuSeconds(backend!.pid);
    let clientCpu = 0;
    let seconds = 0;
    let copies = 0;
    for (let first = 0; first < plan.count; first += chunk) {
      const rows: CheckRow[] = [];
      for (let i = first; i < Math.min(plan.count, first + chunk); i++) {
        const check = benchCheck(plan, i);
        rows.push(toCheckRow(check, {
          checkId: checkIdToUuid(check.id),
          siteId: siteIds.get(check.site)!,
          agentId: agentIds.get(check.agent)!,
        }));
      }
      const cpu = readCpuSeconds(Deno.pid) ?? 0;
      const started = performance.now();
      await copyRows(sql, "checks", rows);
      seconds += (performance.now() - started) / 1000;
      clientCpu += (readCpuSeconds(Deno.pid) ?? 0) - cpu;
      copies++;
    }
    const backendAfter = readCpuSeconds(backend!.pid);
    const [counted] = await sql<{ n: number }[]>`select count(*)::int as n from checks`;
    const [size] = await sql<{ bytes: string }[]>`
      select coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8::text as bytes
      from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'checks'::regclass`;
    return {
      rows: plan.count,
      copies,
      seconds,
      rowsPerSecond: plan.count / seconds,
      counted: counted!.n,
      tableMb: Math.round(Number(size!.bytes) / 1024 / 1024),
      backendCpuSeconds: backendBefore === null || backendAfter === null
        ? null
        : Math.round((backendAfter - backendBefore) * 100) / 100,
      clientCpuSeconds: Math.round(clientCpu * 100) / 100,
    };
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}
