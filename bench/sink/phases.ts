/**
 * The two phases of the sink benchmark that run `monitor sink` itself: the drain of a pre-filled topic
 * (checks per second to committed rows) and the steady 1,000 checks per second (latency from probe end to
 * committed row). Each has a fresh database and consumer group, dropped or left behind at the end.
 *
 * @module
 */
import { delay } from "../../src/async.ts";
import type postgres from "postgres";
import { createTestDatabase, type TestDatabase } from "../../dev/services.ts";
import { agentProducer, benchCheck, type CheckPlan, newPlan, sendChecks } from "./data.ts";
import { type LogLine, PhaseMeter, type SinkProcess, startSink } from "./process.ts";
import type { CheckResult } from "../../src/message.ts";
import { readMemory } from "../procfs.ts";

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The sum of the next offsets the sink stored; 0 until its migrations made the table (SQLSTATE 42P01). */
export async function committedOffsets(sql: postgres.Sql, group: string, topic: string): Promise<number> {
  try {
    const [row] = await sql<{ n: string }[]>`
      select coalesce(sum(next_offset), 0)::int8::text as n from consumer_offsets
      where group_id = ${group} and topic = ${topic}`;
    return Number(row!.n);
  } catch (error) {
    if ((error as { code?: unknown }).code === "42P01") return 0;
    throw error;
  }
}

/** The database backends of the sink's pool. */
async function backendPids(sql: postgres.Sql, database: string): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where datname = ${database} and application_name = 'monitor'`;
  return rows.map((row) => row.pid);
}

/** The figures of a summary line that the results keep. */
function summaryFigures(line: LogLine): Record<string, unknown> {
  return {
    time: line.time,
    stored: line.stored,
    batches: line.batches,
    lag: line.lag,
    latency_p99_ms: line.latency_p99_ms,
    dead_letters: line.dead_letters,
    duplicates: line.duplicates,
  };
}

/** Options of {@linkcode drainPhase}. */
export interface DrainOptions {
  readonly brokers: string;
  readonly topic: string;
  readonly count: number;
  readonly cpuProfDir?: string;
  /** More `deno run` flags for the sink. */
  readonly denoFlags?: readonly string[];
  /** Another entry file for the sink (a candidate change); default this project's `main.ts`. */
  readonly entry?: string;
  /** More `monitor sink` flags, e.g. `["--fetch-max-bytes", "8MiB"]`. */
  readonly sinkArgs?: readonly string[];
  readonly timeoutMs?: number;
}

/**
 * Starts a sink on the pre-filled topic with a fresh group and database and waits until all `count` checks are
 * committed. Progress is read from `consumer_offsets` (written in the same transaction as the rows, so its sum
 * is the number of committed messages, and reading it costs nothing next to `count(*)` over a million rows);
 * the exact `count(*)` and the dead letters are checked once at the end.
 */
export async function drainPhase(options: DrainOptions): Promise<Record<string, unknown>> {
  const { brokers, topic, count } = options;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const db = await createTestDatabase("monitor_bench_sink");
  const group = `bench-sink-${crypto.randomUUID().slice(0, 8)}`;
  let sink: SinkProcess | null = null;
  try {
    sink = startSink({
      brokers,
      topic,
      group,
      databaseUrl: db.url,
      ...(options.cpuProfDir === undefined ? {} : { cpuProfDir: options.cpuProfDir }),
      ...(options.denoFlags === undefined ? {} : { denoFlags: options.denoFlags }),
      ...(options.entry === undefined ? {} : { entry: options.entry }),
      ...(options.sinkArgs === undefined ? {} : { sinkArgs: options.sinkArgs }),
    });
    const meter = new PhaseMeter(sink.pid);
    // VmHWM is the kernel's own peak of the resident set: nothing between two polls is missed.
    let peakKb = 0;
    const samplePeak = () => peakKb = Math.max(peakKb, readMemory(sink!.pid)?.hwmKb ?? 0);
    const progress: [number, number][] = [];
    let firstCommitAt: number | null = null;
    let doneAt: number | null = null;
    let committed = 0;
    let pids: number[] = [];
    for (let polls = 0; polls < Math.ceil(timeoutMs / 250); polls++) {
      await delay(250);
      committed = await committedOffsets(db.sql, group, topic);
      samplePeak();
      const now = Date.now();
      if (committed > 0) firstCommitAt ??= now;
      if (polls % 4 === 0) {
        progress.push([round((now - sink.startedAt) / 1000), committed]);
        pids = await backendPids(db.sql, db.name);
        meter.sample(pids);
      }
      if (committed >= count) {
        doneAt = now;
        break;
      }
      if (sink.exited || sink.lines.some((line) => line.level === "error")) break;
    }
    const cpu = meter.finish(pids);
    samplePeak();
    const exitCode = await sink.stop();
    const [rows] = await db.sql<{ checks: number; sites: number; dead: number }[]>`
      select (select count(*) from checks)::int as checks, (select count(*) from sites)::int as sites,
             (select count(*) from dead_letters)::int as dead`;
    const joined = sink.lines.find((line) => line.message === "joined the group");
    const stopped = sink.lines.find((line) => line.message === "stopped");
    const summaries = sink.lines.filter((line) => line.message === "summary");
    const lastCommit = typeof stopped?.last_commit === "string" ? Date.parse(stopped.last_commit) : null;
    const batches = [...summaries, ...(stopped ? [stopped] : [])]
      .reduce((sum, line) => sum + Number(line.batches ?? 0), 0);
    const joinAt = joined === undefined ? null : Date.parse(joined.time);
    // The end: the sink's own time of its last commit (exact), else the poll that saw the count.
    const endAt = doneAt === null ? null : lastCommit ?? doneAt;
    const rate = (from: number | null) =>
      from === null || endAt === null ? null : Math.round(count / ((endAt - from) / 1000));
    return {
      checks: count,
      committed,
      completed: doneAt !== null,
      exit_code: exitCode,
      checks_per_second: rate(joinAt),
      peak_rss_mib: round(peakKb / 1024),
      seconds_from_join: joinAt === null || endAt === null ? null : round((endAt - joinAt) / 1000, 2),
      checks_per_second_from_process_start: rate(sink.startedAt),
      seconds_from_process_start: endAt === null ? null : round((endAt - sink.startedAt) / 1000, 2),
      checks_per_second_from_first_commit: rate(firstCommitAt),
      seconds_to_join: joinAt === null ? null : round((joinAt - sink.startedAt) / 1000, 2),
      seconds_poll_end_after_last_commit: lastCommit === null || doneAt === null
        ? null
        : round((doneAt - lastCommit) / 1000, 2),
      count_star: rows!.checks,
      exact_count: rows!.checks === count,
      site_status_rows: rows!.sites,
      dead_letters: rows!.dead,
      batches,
      mean_batch: batches > 0 ? Math.round(count / batches) : null,
      summaries: summaries.map(summaryFigures),
      progress_every_second: progress,
      cpu,
      warnings: sink.lines.filter((line) => line.level === "warn" || line.level === "error").slice(0, 10)
        .map((line) => line.message + (line.error ? `: ${line.error}` : "")),
      other_output: sink.otherOutput.slice(0, 10),
    };
  } finally {
    await sink?.stop();
    await db.drop();
  }
}

/** Options of {@linkcode latencyPhase}. */
export interface LatencyOptions {
  readonly brokers: string;
  readonly topic: string;
  /** Checks per second. Default 1,000. */
  readonly rate?: number;
  /** How long to publish, warm-up included. Default 30. */
  readonly seconds?: number;
  /** Checks published in the first seconds are left out of the figures. Default 5. */
  readonly warmupSeconds?: number;
  /** Milliseconds between sends (and between polls of the table). Default 50. */
  readonly tickMs?: number;
  readonly sites?: number;
  /** Another entry file for the sink (a candidate change); default this project's `main.ts`. */
  readonly entry?: string;
}

function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))]!;
}

/**
 * Starts a sink on an empty topic, publishes `rate` checks per second as the agent does (every `tickMs`, each
 * check's probe ending just before its send), and times each check from probe end to the first poll of the
 * table that sees its row (polls every `tickMs`, so a figure is late by up to one poll interval). Also reports
 * the sink's own `latency_p99_ms` of each summary window.
 */
export async function latencyPhase(options: LatencyOptions): Promise<Record<string, unknown>> {
  const { brokers, topic } = options;
  const rate = options.rate ?? 1_000;
  const seconds = options.seconds ?? 30;
  const warmupSeconds = options.warmupSeconds ?? 5;
  const tickMs = options.tickMs ?? 50;
  const perTick = Math.round((rate * tickMs) / 1000);
  const ticks = Math.round((seconds * 1000) / tickMs);
  const plan: CheckPlan = newPlan(perTick * ticks, options.sites ?? 1_000);
  const db: TestDatabase = await createTestDatabase("monitor_bench_latency");
  const group = `bench-latency-${crypto.randomUUID().slice(0, 8)}`;
  let sink: SinkProcess | null = null;
  const producer = agentProducer(brokers);
  try {
    sink = startSink({
      brokers,
      topic,
      group,
      databaseUrl: db.url,
      ...(options.entry === undefined ? {} : { entry: options.entry }),
    });
    await sink.waitFor("joined the group", 60_000);
    await producer.connect();
    await delay(1_000); // the consumer's first fetches
    const meter = new PhaseMeter(sink.pid);
    // id -> probe end (Unix ms, fractional) and started_at, of checks not seen in the table yet.
    const pending = new Map<string, { probeEnd: number; startedMs: number }>();
    const latencies: number[] = [];
    const sendMs: number[] = [];
    const startAt = Date.now();
    const measuredFrom = startAt + warmupSeconds * 1000;
    let publishing = true;
    let polls = 0;
    let ticksPolled = 0;
    let pollMs = 0;

    const poller = (async () => {
      const deadline = startAt + seconds * 1000 + 20_000;
      while ((publishing || pending.size > 0) && Date.now() < deadline) {
        const next = Date.now() + tickMs;
        if (pending.size > 0) {
          let oldest = Infinity;
          for (const { startedMs } of pending.values()) oldest = Math.min(oldest, startedMs);
          const seenAt = Date.now();
          const rows = await db.sql<{ id: string }[]>`
            select id::text as id from checks where started_at >= ${new Date(oldest).toISOString()}`;
          pollMs += Date.now() - seenAt;
          polls++;
          for (const { id } of rows) {
            const entry = pending.get(id);
            if (entry === undefined) continue;
            pending.delete(id);
            if (entry.probeEnd >= measuredFrom) latencies.push(seenAt - entry.probeEnd);
          }
        }
        if (++ticksPolled % 20 === 0) meter.sample(await backendPids(db.sql, db.name));
        await delay(Math.max(0, next - Date.now()));
      }
    })();

    let index = 0;
    for (let tick = 0; tick < ticks; tick++) {
      await delay(Math.max(0, startAt + tick * tickMs - Date.now()));
      const now = Date.now();
      const checks: CheckResult[] = [];
      for (let i = 0; i < perTick; i++, index++) {
        const durationMs = 20 + ((index * 37) % 280) + 0.5;
        const startedMs = now - Math.ceil(durationMs);
        const check = benchCheck(plan, index, { startedMs, durationMs, timeouts: false });
        checks.push(check);
        pending.set(check.id, { probeEnd: startedMs + durationMs, startedMs });
      }
      const sent = performance.now();
      await sendChecks(producer, topic, checks);
      sendMs.push(performance.now() - sent);
    }
    const publishedSeconds = (Date.now() - startAt) / 1000;
    publishing = false;
    await poller;
    const cpu = meter.finish(await backendPids(db.sql, db.name));
    const missing = pending.size;
    await sink.stop();
    const summaries = sink.lines.filter((line) => line.message === "summary");
    // Windows that lie wholly in the measured part of the run (after warm-up, before the end of publishing).
    const steady = summaries.filter((line, i) => {
      const end = Date.parse(line.time);
      const start = i === 0 ? sink!.startedAt : Date.parse(summaries[i - 1]!.time);
      return start >= measuredFrom && end <= startAt + publishedSeconds * 1000 && Number(line.stored) > 0;
    });
    const sinkP99 = steady.map((line) => Number(line.latency_p99_ms));
    latencies.sort((a, b) => a - b);
    sendMs.sort((a, b) => a - b);
    return {
      rate_per_second: rate,
      published: index,
      published_seconds: round(publishedSeconds, 2),
      achieved_rate_per_second: Math.round(index / publishedSeconds),
      measured_checks: latencies.length,
      missing,
      polled: { interval_ms: tickMs, polls, mean_poll_ms: polls > 0 ? round(pollMs / polls, 2) : null },
      p50_ms: round(percentile(latencies, 50) ?? NaN),
      p90_ms: round(percentile(latencies, 90) ?? NaN),
      p99_ms: round(percentile(latencies, 99) ?? NaN),
      max_ms: round(latencies.at(-1) ?? NaN),
      sink_reported_latency_p99_ms_per_window: sinkP99,
      sink_reported_latency_p99_ms_max: sinkP99.length > 0 ? Math.max(...sinkP99) : null,
      publish_send_ms: {
        p50: round(percentile(sendMs, 50) ?? NaN),
        p99: round(percentile(sendMs, 99) ?? NaN),
        max: round(sendMs.at(-1) ?? NaN),
      },
      summaries: summaries.map(summaryFigures),
      cpu,
    };
  } finally {
    await producer.disconnect().catch(() => {});
    await sink?.stop();
    await db.drop();
  }
}
