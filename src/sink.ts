/**
 * `monitor sink`: consumes the check results in a consumer group and stores them in PostgreSQL, one
 * transaction per Kafka batch that also records the next offset of each partition. On every partition
 * assignment the consumer seeks to the offsets stored in PostgreSQL, and the writer skips anything below
 * them, so across crashes, restarts, rebalances and redelivery every check is stored exactly once.
 * Kafka's own committed offsets trail the database's and only feed lag tools.
 *
 * @module
 */
import type { Consumer, EachBatchPayload, Kafka } from "kafkajs";
import type postgres from "postgres";
import {
  COMMON_FLAGS,
  DATABASE_FLAGS,
  durationFlag,
  KAFKA_FLAGS,
  logFormat,
  parseFlags,
  positiveInteger,
  UsageError,
} from "./args.ts";
import { Backoff, sleep } from "./backoff.ts";
import { connectDatabase, redactUrl } from "./db/connect.ts";
import { migrate } from "./db/migrate.ts";
import { maintainPartitions } from "./db/partitions.ts";
import { type Batch, type DeadLetter, type IncomingCheck, readOffsets, writeBatch } from "./db/writer.ts";
import { createKafka, describeKafka, kafkaSettings } from "./kafka.ts";
import { createLogger, type Logger } from "./log.ts";
import { decodeCheck } from "./message.ts";
import { Histogram } from "./histogram.ts";
import { type Metric, serveMetrics } from "./metrics.ts";

/** Help text of `monitor sink`. */
export const SINK_USAGE = `monitor sink: consume check results from Kafka and store them in PostgreSQL

USAGE:
  monitor sink [OPTIONS]

OPTIONS:
  --group NAME            consumer group (MONITOR_GROUP; default monitor-sink)
  --retention DAYS        drop check partitions older than this; 0 keeps everything
                          (MONITOR_RETENTION_DAYS; default 90)
  --no-migrate            do not apply database migrations at start (MONITOR_NO_MIGRATE)
  --summary-every DUR     how often the summary line is logged (MONITOR_SUMMARY_EVERY; default 60s)
  --metrics HOST:PORT     serve Prometheus metrics on /metrics, e.g. :9465 (MONITOR_METRICS; default off)

KAFKA:
  --brokers H:P,...       MONITOR_BROKERS (required)
  --topic NAME            MONITOR_TOPIC (default monitor.checks)
  --kafka-tls             use TLS with the system CA store (implied by the three options below and by SASL)
  --kafka-ca FILE         CA certificate, PEM (MONITOR_KAFKA_CA)
  --kafka-cert FILE       client certificate, PEM (MONITOR_KAFKA_CERT)
  --kafka-key FILE        client key, PEM (MONITOR_KAFKA_KEY)
  --sasl-mechanism M      plain, scram-sha-256 or scram-sha-512 (MONITOR_SASL_MECHANISM)
  --sasl-username U       MONITOR_SASL_USERNAME; the password only from MONITOR_SASL_PASSWORD

DATABASE:
  --database-url URL      DATABASE_URL (required), e.g. postgres://monitor@db:5432/monitor?sslmode=verify-full
  --database-ca FILE      CA certificate for sslmode=verify-ca/verify-full (MONITOR_DATABASE_CA)

COMMON:
  --log-format FORMAT     text or json (MONITOR_LOG_FORMAT; default text)
  -h, --help              show this help
`;

/** Help text of `monitor migrate`. */
export const MIGRATE_USAGE = `monitor migrate: create or upgrade the database schema, then exit

USAGE:
  monitor migrate [OPTIONS]

Applies the migrations the program carries, in order, each once, under an advisory lock; running it again
changes nothing.

DATABASE:
  --database-url URL      DATABASE_URL (required)
  --database-ca FILE      CA certificate for sslmode=verify-ca/verify-full (MONITOR_DATABASE_CA)

COMMON:
  --log-format FORMAT     text or json (MONITOR_LOG_FORMAT; default text)
  -h, --help              show this help
`;

const SINK_FLAGS = {
  ...COMMON_FLAGS,
  ...KAFKA_FLAGS,
  ...DATABASE_FLAGS,
  group: { type: "string", env: "MONITOR_GROUP" },
  retention: { type: "string", env: "MONITOR_RETENTION_DAYS" },
  "no-migrate": { type: "boolean", env: "MONITOR_NO_MIGRATE" },
  "summary-every": { type: "string", env: "MONITOR_SUMMARY_EVERY" },
  metrics: { type: "string", env: "MONITOR_METRICS" },
} as const;

const MIGRATE_FLAGS = { ...COMMON_FLAGS, ...DATABASE_FLAGS } as const;

type Env = Readonly<Record<string, string | undefined>>;

const PARTITION_MAINTENANCE_EVERY_MS = 3_600_000;
const HEARTBEAT_SLICE_MS = 2_000;

function databaseUrl(value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new UsageError("Cannot connect to the database: set '--database-url' or DATABASE_URL");
  }
  return value;
}

/** Runs `monitor migrate`. */
export async function migrateCommand(args: readonly string[], env: Env): Promise<number> {
  const flags = parseFlags(args, MIGRATE_FLAGS, env);
  if (flags.help) {
    console.log(MIGRATE_USAGE);
    return 0;
  }
  const log = createLogger({ format: logFormat(flags["log-format"]) });
  const url = databaseUrl(flags["database-url"]);
  const sql = await connectDatabase({
    url,
    caFile: flags["database-ca"] ?? null,
    log,
    connectTimeoutSeconds: 5,
  });
  try {
    let applied: string[];
    try {
      applied = await migrate(sql, log);
    } catch (error) {
      throw new Error(`Cannot apply migrations: ${describeError(error)}`, { cause: error });
    }
    log.info(applied.length > 0 ? "migrations applied" : "schema up to date", {
      applied,
      database: redactUrl(url),
    });
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Runs `monitor sink` until `shutdown` aborts. */
export async function sinkCommand(args: readonly string[], env: Env, shutdown: AbortSignal): Promise<number> {
  const flags = parseFlags(args, SINK_FLAGS, env);
  if (flags.help) {
    console.log(SINK_USAGE);
    return 0;
  }
  const log = createLogger({ format: logFormat(flags["log-format"]) });
  const group = flags.group ?? "monitor-sink";
  const retentionDays = positiveInteger("retention", flags.retention, 90, 0);
  const summaryEveryMs = durationFlag("summary-every", flags["summary-every"], 60_000);
  const url = databaseUrl(flags["database-url"]);
  const settings = await kafkaSettings(flags, env, `monitor-sink-${group}`);
  if (settings === null) throw new UsageError("Cannot consume: set '--brokers' or MONITOR_BROKERS");

  const sql = await connectDatabase({
    url,
    caFile: flags["database-ca"] ?? null,
    log,
    connectTimeoutSeconds: 5,
  });
  try {
    // Migrations and partitions wait for the database like everything else: a sink started before its
    // database keeps trying rather than exiting.
    if (!flags["no-migrate"]) {
      await retrying(log, shutdown, "apply migrations", () => migrate(sql, log));
    }
    await retrying(
      log,
      shutdown,
      "prepare partitions",
      () => maintainPartitions(sql, { retentionDays, log }),
    );
    if (shutdown.aborted) return 0;
    const kafka = createKafka(settings, log);
    log.info("sink starting", { kafka: describeKafka(settings), group, database: redactUrl(url) });
    const sink = new SinkConsumer(kafka, sql, { group, topic: settings.topic, log, shutdown });
    const maintenance = setInterval(() => {
      maintainPartitions(sql, { retentionDays, log }).catch((error) =>
        log.warn("partition maintenance failed; will retry", { error: (error as Error).message })
      );
    }, PARTITION_MAINTENANCE_EVERY_MS);
    const summary = setInterval(() => log.info("summary", sink.takeStats()), summaryEveryMs);
    const metrics = flags.metrics === undefined
      ? null
      : serveMetrics(flags.metrics, () => sink.metrics(), log);
    try {
      await sink.run();
    } finally {
      clearInterval(maintenance);
      clearInterval(summary);
      await metrics?.close();
      log.info("stopped", sink.takeStats());
    }
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function retrying<T>(
  log: Logger,
  shutdown: AbortSignal,
  what: string,
  action: () => Promise<T>,
): Promise<T | undefined> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 15_000 });
  while (!shutdown.aborted) {
    try {
      return await action();
    } catch (error) {
      if (!isTransient(error)) throw new Error(`Cannot ${what}: ${describeError(error)}`, { cause: error });
      const delay = backoff.next();
      log.warn(`cannot ${what}; will retry`, { error: (error as Error).message, retry_in_ms: delay });
      await sleep(delay, shutdown);
    }
  }
  return undefined;
}

/** An error's message with its code (SQLSTATE, or the TLS or socket error code) when it has one. */
function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
}

// Connection trouble and server shutdowns are worth waiting out; a broken migration or a permission error
// is not, and stops the sink with its message.
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return true;
  return code.startsWith("08") || code.startsWith("57P") || code === "53300" || code === "40001" ||
    code === "40P01" || code === "CONNECTION_CLOSED" || code === "CONNECTION_ENDED" ||
    code === "CONNECTION_DESTROYED" || code === "CONNECT_TIMEOUT" || code === "ECONNREFUSED" ||
    code === "ECONNRESET" || code === "ETIMEDOUT" || code === "EPIPE";
}

/** Options of {@linkcode SinkConsumer}. */
export interface SinkConsumerOptions {
  readonly group: string;
  readonly topic: string;
  readonly log: Logger;
  readonly shutdown: AbortSignal;
}

/** A message as it came from Kafka. */
interface RawMessage {
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
}

/** Counters for the summary line. */
interface SinkStats extends Record<string, unknown> {
  stored: number;
  duplicates: number;
  skipped: number;
  dead_letters: number;
  batches: number;
  lag: number;
  last_commit: string | null;
  latency_p99_ms: number;
}

/** The consumer-group member that moves batches from Kafka into PostgreSQL. */
export class SinkConsumer {
  readonly #consumer: Consumer;
  readonly #lag = new Map<number, number>();
  readonly #pendingCommits = new Map<number, string>();
  #lastKafkaCommit = 0;
  #stats = newStats();
  readonly #totals = newStats();
  #latency = new Histogram();

  constructor(
    kafka: Kafka,
    private readonly sql: postgres.Sql,
    private readonly options: SinkConsumerOptions,
  ) {
    this.#consumer = kafka.consumer({
      groupId: options.group,
      // A crashed member holds its partitions until this runs out: short enough for quick failover,
      // long enough to ride out a pause.
      sessionTimeout: 20_000,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 4 * 1024 * 1024,
      maxBytes: 16 * 1024 * 1024,
      allowAutoTopicCreation: false,
      retry: {
        initialRetryTime: 300,
        maxRetryTime: 15_000,
        retries: 8,
        restartOnFailure: () => Promise.resolve(true),
      },
    });
  }

  /** Counters since the start, for the metrics endpoint. */
  metrics(): Metric[] {
    const totals = this.#totals;
    const counter = (name: string, help: string, value: number): Metric => ({
      name,
      help,
      type: "counter",
      value,
    });
    return [
      counter("monitor_sink_checks_stored_total", "Checks inserted.", totals.stored),
      counter("monitor_sink_duplicates_total", "Checks whose id was already stored.", totals.duplicates),
      counter(
        "monitor_sink_skipped_total",
        "Messages below the stored offsets (redelivered).",
        totals.skipped,
      ),
      counter("monitor_sink_dead_letters_total", "Messages stored in dead_letters.", totals.dead_letters),
      counter("monitor_sink_batches_total", "Batches committed.", totals.batches),
      {
        name: "monitor_sink_consumer_lag",
        help: "Messages behind the end of the assigned partitions, as of the last batch.",
        type: "gauge",
        value: [...this.#lag.values()].reduce((sum, lag) => sum + lag, 0),
      },
    ];
  }

  /** Counters since the last call. */
  takeStats(): SinkStats {
    const stats = {
      ...this.#stats,
      lag: [...this.#lag.values()].reduce((sum, lag) => sum + lag, 0),
      latency_p99_ms: this.#latency.percentile(99),
    };
    this.#stats = { ...newStats(), last_commit: stats.last_commit };
    this.#latency = new Histogram();
    return stats;
  }

  /** Consumes until the shutdown signal aborts, then finishes or abandons the batch in hand and leaves. */
  async run(): Promise<void> {
    const { log, shutdown, topic } = this.options;
    const consumer = this.#consumer;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const partitions = event.payload.memberAssignment[topic] ?? [];
      log.info("joined the group", { group: this.options.group, partitions });
      this.#seekToStoredOffsets(partitions).catch((error) =>
        // Not fatal: Kafka's committed offsets trail the database's, and the writer skips what is stored.
        log.warn("cannot read stored offsets; starting from Kafka's", { error: (error as Error).message })
      );
    });
    consumer.on(consumer.events.CRASH, (event) => {
      log.warn("consumer crashed; restarting", {
        error: event.payload.error.message,
        restart: event.payload.restart,
      });
    });
    await retrying(log, shutdown, "connect to Kafka", async () => {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
    });
    if (shutdown.aborted) {
      await consumer.disconnect();
      return;
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#handleBatch(payload),
    });
    await new Promise<void>((resolve) => {
      if (shutdown.aborted) resolve();
      shutdown.addEventListener("abort", () => resolve(), { once: true });
    });
    log.info("stopping: finishing the batch in hand");
    await consumer.disconnect();
  }

  async #seekToStoredOffsets(partitions: readonly number[]): Promise<void> {
    const stored = await readOffsets(this.sql, this.options.group, this.options.topic);
    for (const partition of partitions) {
      const offset = stored.get(partition);
      if (offset !== undefined) this.#consumer.seek({ topic: this.options.topic, partition, offset });
    }
  }

  async #handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    const { log, shutdown } = this.options;
    const last = batch.messages.at(-1);
    if (last === undefined) return;
    const checks: IncomingCheck[] = [];
    const deadLetters: DeadLetter[] = [];
    const raw = new Map<string, RawMessage>();
    for (const message of batch.messages) {
      const value = message.value === null ? null : new Uint8Array(message.value);
      raw.set(message.offset, { key: message.key === null ? null : new Uint8Array(message.key), value });
      try {
        checks.push({ partition: batch.partition, offset: message.offset, check: decodeCheck(value) });
      } catch (error) {
        deadLetters.push({
          partition: batch.partition,
          offset: message.offset,
          key: raw.get(message.offset)!.key,
          value,
          error: (error as Error).message,
        });
      }
    }
    const nextOffset = (BigInt(last.offset) + 1n).toString();
    const toWrite: Batch = {
      group: this.options.group,
      topic: batch.topic,
      checks,
      deadLetters,
      progress: [{ partition: batch.partition, firstOffset: batch.messages[0]!.offset, nextOffset }],
    };
    const backoff = new Backoff({ initialMs: 250, maxMs: 10_000 });
    for (;;) {
      // A batch of a partition this member no longer owns is left to its new owner; stored offsets fence it.
      if (!isRunning() || isStale() || shutdown.aborted) return;
      try {
        if (backoff.attempts > 0 && backoff.attempts % 3 === 0) {
          // The same batch keeps failing with the database up: find the message that the database refuses.
          await this.#writeOneByOne(toWrite, raw);
        } else {
          this.#count(await writeBatch(this.sql, toWrite), checks);
        }
        if (backoff.attempts > 0) log.info("database writes resumed", { attempts: backoff.attempts });
        break;
      } catch (error) {
        const delay = backoff.next();
        log.warn("cannot store a batch; will retry", {
          error: (error as Error).message,
          code: (error as { code?: unknown }).code,
          partition: batch.partition,
          offset: batch.messages[0]!.offset,
          attempt: backoff.attempts,
          retry_in_ms: delay,
        });
        // Heartbeats keep the group membership while the database is away (kafkajs sends them only when
        // asked); heartbeat() throws when a rebalance is under way, which abandons this batch.
        for (let waited = 0; waited < delay && !shutdown.aborted; waited += HEARTBEAT_SLICE_MS) {
          await sleep(Math.min(HEARTBEAT_SLICE_MS, delay - waited), shutdown);
          await heartbeat();
        }
      }
    }
    resolveOffset(last.offset);
    this.#lag.set(batch.partition, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(nextOffset))));
    this.#pendingCommits.set(batch.partition, nextOffset);
    this.#stats.last_commit = new Date().toISOString();
    await this.#commitToKafkaNowAndThen();
  }

  // Writes each message in a transaction of its own; one that the database refuses for its data (not for
  // being unreachable) goes to the dead-letter table with the database's error, and the rest are stored.
  async #writeOneByOne(whole: Batch, raw: ReadonlyMap<string, RawMessage>): Promise<void> {
    const items = [
      ...whole.checks.map((check) => ({ offset: check.offset, check, dead: null })),
      ...whole.deadLetters.map((dead) => ({ offset: dead.offset, check: null, dead })),
    ].sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    for (const item of items) {
      const progress = [{
        partition: item.check?.partition ?? item.dead!.partition,
        firstOffset: item.offset,
        nextOffset: (BigInt(item.offset) + 1n).toString(),
      }];
      const single: Batch = {
        ...whole,
        checks: item.check ? [item.check] : [],
        deadLetters: item.dead ? [item.dead] : [],
        progress,
      };
      try {
        this.#count(await writeBatch(this.sql, single), single.checks);
      } catch (error) {
        if (isTransient(error) || item.check === null) throw error;
        const { check } = item;
        this.options.log.warn("the database refused a check; moved to the dead-letter table", {
          error: (error as Error).message,
          partition: check.partition,
          offset: check.offset,
        });
        const refused: DeadLetter = {
          partition: check.partition,
          offset: check.offset,
          key: raw.get(check.offset)?.key ?? null,
          value: raw.get(check.offset)?.value ?? null,
          error: `Cannot store check: the database refused it: ${(error as Error).message}`,
        };
        this.#count(await writeBatch(this.sql, { ...single, checks: [], deadLetters: [refused] }), []);
      }
    }
  }

  #count(result: Awaited<ReturnType<typeof writeBatch>>, checks: readonly IncomingCheck[]): void {
    for (const stats of [this.#stats, this.#totals]) {
      stats.stored += result.stored;
      stats.duplicates += result.duplicates;
      stats.skipped += result.skipped;
      stats.dead_letters += result.deadLetters;
      stats.batches++;
    }
    const now = Date.now();
    for (const { check } of checks) {
      this.#latency.record(now - Date.parse(check.started_at) - check.duration_ms);
    }
  }

  // Kafka's committed offsets are for lag tools only (the database holds the truth), so they are sent at
  // most once a second rather than once per batch.
  async #commitToKafkaNowAndThen(): Promise<void> {
    if (Date.now() - this.#lastKafkaCommit < 1_000) return;
    const offsets = [...this.#pendingCommits].map(([partition, offset]) => ({
      topic: this.options.topic,
      partition,
      offset,
    }));
    this.#pendingCommits.clear();
    this.#lastKafkaCommit = Date.now();
    try {
      await this.#consumer.commitOffsets(offsets);
    } catch (error) {
      this.options.log.debug("cannot commit offsets to Kafka (the database has them)", {
        error: (error as Error).message,
      });
    }
  }
}

function newStats(): SinkStats {
  return {
    stored: 0,
    duplicates: 0,
    skipped: 0,
    dead_letters: 0,
    batches: 0,
    lag: 0,
    last_commit: null,
    latency_p99_ms: 0,
  };
}
