/**
 * `monitor sink`: consumes the check results in a consumer group and stores them in PostgreSQL, one
 * transaction per Kafka batch that also records the next offset of each partition. On every partition
 * assignment the consumer seeks to the offsets stored in PostgreSQL, and the writer skips anything below
 * them, so across crashes, restarts, rebalances and redelivery every check is stored exactly once.
 * Kafka's own committed offsets trail the database's and only feed lag tools.
 *
 * @module
 */
import {
  byteSize,
  COMMON_FLAGS,
  COMMON_SECTION,
  DATABASE_FLAGS,
  DATABASE_SECTION,
  durationFlag,
  type FlagSpec,
  KAFKA_FLAGS,
  KAFKA_SECTION,
  logOptions,
  parseFlags,
  positiveInteger,
  runningFlags,
  UsageError,
} from "../args.ts";
import type { CommandDefinition, CommandHelp } from "../help.ts";
import { connectDatabase, databaseUrl, redactUrl } from "../db/connect.ts";
import { DatabaseHandle } from "../db/handle.ts";
import { migrate } from "../db/migrate.ts";
import { maintainPartitions } from "../db/partitions.ts";
import { maintainRollupPartitions } from "../db/rollup_partitions.ts";
import { createKafka, describeKafka, type KafkaSettings, kafkaSettings } from "../kafka.ts";
import { waitForKafka } from "../kafka_preflight.ts";
import { createLogger, type Logger } from "../log.ts";
import { type HealthCheck, type Metric, serveMetrics } from "../metrics.ts";
import { abortable, deadline, isTimeout } from "../async.ts";
import { retrying } from "../db/retry.ts";
import { SINK_FETCH, SinkConsumer, type SinkFetch } from "./consumer.ts";

const MIB = 1024 * 1024;

/** The process's memory for the summary line, in MiB: resident, V8 heap in use, and outside the heap. */
function memory(): { rss_mib: number; heap_mib: number; external_mib: number } {
  const usage = Deno.memoryUsage();
  const mib = (bytes: number) => Math.round(bytes / MIB);
  return { rss_mib: mib(usage.rss), heap_mib: mib(usage.heapUsed), external_mib: mib(usage.external) };
}

const SINK_OPTIONS = {
  group: {
    type: "string",
    env: "MONITOR_GROUP",
    arg: "NAME",
    description: "consumer group",
    default: "monitor-sink",
  },
  retention: {
    type: "string",
    env: "MONITOR_RETENTION_DAYS",
    arg: "DAYS",
    description: "drop raw check partitions older than this; 0 keeps everything",
    default: "30",
  },
  "hourly-retention": {
    type: "string",
    env: "MONITOR_HOURLY_RETENTION_DAYS",
    arg: "DAYS",
    description: "drop hourly rollup partitions (months) older than this; 0 keeps everything",
    default: "400",
  },
  "daily-retention": {
    type: "string",
    env: "MONITOR_DAILY_RETENTION_DAYS",
    arg: "DAYS",
    description: "drop daily rollup partitions (years) older than this; 0 keeps everything",
    default: "0",
  },
  "no-migrate": {
    type: "boolean",
    env: "MONITOR_NO_MIGRATE",
    description: "do not apply database migrations at start",
  },
  ...runningFlags(":9465"),
  "stall-timeout": {
    type: "string",
    env: "MONITOR_STALL_TIMEOUT",
    arg: "DUR",
    description: "a partition with lag that stores nothing this long is a stall: logged, /healthz answers " +
      "503, and the consumer rejoins the group",
    default: "20s",
  },
  "drain-timeout": {
    type: "string",
    env: "MONITOR_DRAIN_TIMEOUT",
    arg: "DUR",
    description: "on SIGINT/SIGTERM, how long to wait for the batch in hand and for leaving the group",
    default: "15s",
  },
} as const satisfies Record<string, FlagSpec>;

/** What is fetched and held at once: these, not the backlog, bound the sink's memory (README, "Memory"). */
const MEMORY_OPTIONS = {
  "fetch-max-bytes": {
    type: "string",
    env: "MONITOR_FETCH_MAX_BYTES",
    arg: "SIZE",
    description: "most bytes of one fetch from one broker, compressed; the main bound of memory",
    default: "1MiB",
  },
  "fetch-partition-bytes": {
    type: "string",
    env: "MONITOR_FETCH_PARTITION_BYTES",
    arg: "SIZE",
    description: "most bytes of one partition per fetch: about one batch, one transaction",
    default: "512KiB",
  },
  "partitions-in-flight": {
    type: "string",
    env: "MONITOR_PARTITIONS_IN_FLIGHT",
    arg: "N",
    description: "batches decoded and written at once",
    default: "3",
  },
} as const satisfies Record<string, FlagSpec>;

const SINK_FLAGS = {
  ...SINK_OPTIONS,
  ...MEMORY_OPTIONS,
  ...KAFKA_FLAGS,
  ...DATABASE_FLAGS,
  ...COMMON_FLAGS,
} as const;

/** Help of `monitor sink`. */
export const SINK_HELP: CommandHelp = {
  command: "monitor sink",
  summary: "consume check results from Kafka and store them in PostgreSQL",
  sections: [
    { title: "OPTIONS", flags: SINK_OPTIONS },
    { title: "MEMORY (what is fetched and held at once)", flags: MEMORY_OPTIONS },
    { ...KAFKA_SECTION, title: "KAFKA (--brokers is required)" },
    DATABASE_SECTION,
    COMMON_SECTION,
  ],
};

/** `monitor sink` for the command table of `main.ts`. */
export const SINK_COMMAND: CommandDefinition = { help: SINK_HELP, flags: SINK_FLAGS, run: sinkCommand };

type Env = Readonly<Record<string, string | undefined>>;

const PARTITION_MAINTENANCE_EVERY_MS = 3_600_000;
/**
 * How long one database call may take before the pool is replaced (see src/db/handle.ts): shorter than the
 * consumer's session timeout (20 s, src/sink/consumer.ts), so a slow database costs a retry, not the group
 * membership.
 */
const DATABASE_DEADLINE_MS = 15_000;
/** Migrations may rewrite tables; they get longer. */
const MIGRATION_DEADLINE_MS = 120_000;
/** The first contact: a `select 1` that a reachable server answers at once. */
const CONNECT_DEADLINE_MS = 5_000;
/** How often the database is asked a `select 1`, so `/healthz` knows it is gone even with no checks coming. */
const HEALTH_PING_EVERY_MS = 10_000;

/** Runs `monitor sink` until `shutdown` aborts; then it exits within `--drain-timeout`, whatever it waits on. */
export async function sinkCommand(args: readonly string[], env: Env, shutdown: AbortSignal): Promise<number> {
  const flags = parseFlags(args, SINK_FLAGS, env);
  const log = createLogger(logOptions(flags));
  const group = flags.group ?? "monitor-sink";
  const retentionDays = positiveInteger("retention", flags.retention, 30, 0);
  const hourlyRetentionDays = positiveInteger("hourly-retention", flags["hourly-retention"], 400, 0);
  const dailyRetentionDays = positiveInteger("daily-retention", flags["daily-retention"], 0, 0);
  const summaryEveryMs = durationFlag("summary-every", flags["summary-every"], 60_000);
  const stallTimeoutMs = durationFlag("stall-timeout", flags["stall-timeout"], 20_000);
  if (stallTimeoutMs < 1_000) {
    throw new UsageError(
      `Cannot use flag '--stall-timeout': expected 1s or more: got '${flags["stall-timeout"]}'`,
    );
  }
  const drain = drainClock(shutdown, durationFlag("drain-timeout", flags["drain-timeout"], 15_000));
  const fetch: SinkFetch = {
    maxBytes: byteSize("fetch-max-bytes", flags["fetch-max-bytes"], SINK_FETCH.maxBytes, 1024),
    maxBytesPerPartition: byteSize(
      "fetch-partition-bytes",
      flags["fetch-partition-bytes"],
      SINK_FETCH.maxBytesPerPartition,
      1024,
    ),
    partitionsConsumedConcurrently: positiveInteger(
      "partitions-in-flight",
      flags["partitions-in-flight"],
      SINK_FETCH.partitionsConsumedConcurrently,
    ),
    maxWaitTimeInMs: SINK_FETCH.maxWaitTimeInMs,
  };
  const url = databaseUrl(flags["database-url"]);
  const settings = await kafkaSettings(flags, env, `monitor-sink-${group}`);
  if (settings === null) throw new UsageError("Cannot consume: set '--brokers' or MONITOR_BROKERS");

  // Bound before anything starts, so that a taken address stops the sink before it connects, and a sink
  // waiting for its broker or database is seen waiting; the figures are wired in once the consumer exists.
  let collect: () => readonly Metric[] = () => [];
  let db: DatabaseHandle | null = null;
  let stalled: HealthCheck = () => null;
  const health: HealthCheck = () => db?.unreachable ? `database unreachable: ${db.unreachable}` : stalled();
  const metrics = flags.metrics === undefined ? null : serveMetrics(
    flags.metrics,
    () => [
      {
        name: "monitor_sink_database_up",
        help: "1 while the database answers, 0 while it cannot be reached.",
        type: "gauge",
        value: db?.unreachable ? 0 : 1,
      },
      ...collect(),
    ],
    log,
    health,
  );
  try {
    // A permanent Kafka error (certificate, password, ACL) ends the sink before anything else; an
    // unreachable broker or a missing topic is waited for.
    if (!await waitForKafka(settings, { role: "sink", group, log, signal: shutdown })) return 0;
    return await consume({
      url,
      caFile: flags["database-ca"] ?? null,
      migrate: !flags["no-migrate"],
      retentionDays,
      hourlyRetentionDays,
      dailyRetentionDays,
      summaryEveryMs,
      stallTimeoutMs,
      settings,
      fetch,
      group,
      log,
      shutdown,
      drain,
      serveFigures: (figures, check) => {
        collect = figures;
        stalled = check;
      },
      watchDatabase: (handle) => db = handle,
    });
  } finally {
    if (metrics !== null) await drain.within(metrics.close());
  }
}

/** What {@linkcode consume} needs, read from the flags. */
interface SinkOptions {
  readonly url: string;
  readonly caFile: string | null;
  readonly migrate: boolean;
  readonly retentionDays: number;
  readonly hourlyRetentionDays: number;
  readonly dailyRetentionDays: number;
  readonly summaryEveryMs: number;
  readonly stallTimeoutMs: number;
  readonly settings: KafkaSettings;
  readonly fetch: SinkFetch;
  readonly group: string;
  readonly log: Logger;
  readonly shutdown: AbortSignal;
  /** What is left of `--drain-timeout` once `shutdown` aborted. */
  readonly drain: DrainClock;
  /** Hands the running consumer's figures and its stall check to the metrics endpoint. */
  readonly serveFigures: (collect: () => readonly Metric[], stalled: HealthCheck) => void;
  /** Hands the database handle to `/healthz`. */
  readonly watchDatabase: (db: DatabaseHandle) => void;
}

/** Prepares the database, then consumes until `shutdown` aborts. */
async function consume(options: SinkOptions): Promise<number> {
  const { url, log, shutdown, settings, group, drain } = options;
  const open = () => connectDatabase({ url, caFile: options.caFile, log, connectTimeoutSeconds: 5 });
  const db = new DatabaseHandle(open, await open(), shutdown);
  options.watchDatabase(db);
  try {
    // The database is waited for like the broker: a sink started before its database keeps trying.
    await retrying(
      log,
      shutdown,
      "connect to the database",
      () => db.run("connect to the database", (sql) => sql`select 1`, CONNECT_DEADLINE_MS),
    );
    if (options.migrate) {
      await retrying(
        log,
        shutdown,
        "apply migrations",
        () => db.run("apply migrations", (sql) => migrate(sql, log), MIGRATION_DEADLINE_MS),
      );
    }
    const maintain = () =>
      db.run(
        "maintain partitions",
        async (sql) => {
          await maintainPartitions(sql, { retentionDays: options.retentionDays, log });
          await maintainRollupPartitions(sql, {
            hourlyRetentionDays: options.hourlyRetentionDays,
            dailyRetentionDays: options.dailyRetentionDays,
            log,
          });
        },
        DATABASE_DEADLINE_MS,
      );
    await retrying(log, shutdown, "prepare partitions", maintain);
    if (shutdown.aborted) return 0;
    const kafka = createKafka(settings, log);
    log.info("sink starting", { kafka: describeKafka(settings), group, database: redactUrl(url) });
    const sink = new SinkConsumer(kafka, db, {
      group,
      topic: settings.topic,
      log,
      shutdown,
      deadlineMs: DATABASE_DEADLINE_MS,
      stallTimeoutMs: options.stallTimeoutMs,
      fetch: options.fetch,
    });
    const maintenance = setInterval(() => {
      maintain().catch((error) => {
        if (!shutdown.aborted) {
          log.warn("partition maintenance failed; will retry", { error: (error as Error).message });
        }
      });
    }, PARTITION_MAINTENANCE_EVERY_MS);
    const summary = setInterval(
      () => log.info("summary", { ...sink.takeStats(), ...memory() }),
      options.summaryEveryMs,
    );
    // An idle sink makes no database calls; this one keeps /healthz true while no checks arrive.
    const ping = setInterval(() => {
      db.run("reach the database", (sql) => sql`select 1`, CONNECT_DEADLINE_MS).catch(() => {});
    }, HEALTH_PING_EVERY_MS);
    options.serveFigures(() => sink.metrics(), () => sink.health());
    try {
      const running = sink.run();
      await abortable(running, shutdown).catch((error) => {
        if (!shutdown.aborted) throw error;
      });
      // Leaving the group, or a Kafka request under way, may wait on a broker that is gone.
      if (!await drain.within(running)) {
        log.warn("stopping: the consumer did not finish within the drain timeout; leaving without it", {
          drain_timeout_ms: drain.timeoutMs,
        });
      }
    } finally {
      clearInterval(maintenance);
      clearInterval(summary);
      clearInterval(ping);
      log.info("stopped", sink.takeStats());
    }
    return 0;
  } finally {
    await drain.within(db.end(Math.max(0, Math.floor(drain.remaining() / 1000))));
  }
}

/** The time left of the drain timeout, which starts when the shutdown signal aborts. */
interface DrainClock {
  readonly timeoutMs: number;
  /** Milliseconds left (very many before the shutdown). */
  remaining(): number;
  /** Waits for `promise` until the drain time is up; true if it settled (a rejection is ignored). */
  within(promise: Promise<unknown>): Promise<boolean>;
}

function drainClock(shutdown: AbortSignal, timeoutMs: number): DrainClock {
  let end = Infinity;
  const started = () => end = Date.now() + timeoutMs;
  if (shutdown.aborted) started();
  else shutdown.addEventListener("abort", started, { once: true });
  const remaining = () => Math.max(0, Math.min(end - Date.now(), 2 ** 31 - 1));
  return {
    timeoutMs,
    remaining,
    within: (promise) => deadline(promise, remaining()).then(() => true, (error) => !isTimeout(error)),
  };
}
