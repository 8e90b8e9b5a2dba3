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
import { databaseUrl } from "../db/connect.ts";
import type { DatabaseHandle } from "../db/handle.ts";
import { kafkaSettings } from "../kafka.ts";
import { waitForKafka } from "../kafka_preflight.ts";
import { createLogger } from "../log.ts";
import { type HealthCheck, type Metric, serveMetrics } from "../metrics.ts";
import { SINK_FETCH, type SinkFetch } from "./group_consumer.ts";
import { consume, drainClock } from "./run.ts";

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
    description: "most bytes of one fetch from one broker, compressed",
    default: "1MiB",
  },
  "fetch-partition-bytes": {
    type: "string",
    env: "MONITOR_FETCH_PARTITION_BYTES",
    arg: "SIZE",
    description: "most bytes of one partition per fetch",
    default: "512KiB",
  },
  "partitions-in-flight": {
    type: "string",
    env: "MONITOR_PARTITIONS_IN_FLIGHT",
    arg: "N",
    description: "transactions written at once, each of its own partition",
    default: "2",
  },
  "max-batch": {
    type: "string",
    env: "MONITOR_MAX_BATCH",
    arg: "CHECKS",
    description: "most checks in one transaction; the sink holds at most (N + 1) times this many decoded",
    default: "20000",
  },
  "state-cache": {
    type: "string",
    env: "MONITOR_STATE_CACHE",
    arg: "SIZE",
    description: "most bytes of sites' state rows kept between transactions (about 900 a site with three " +
      "locations); 0 reads every batch's sites from the database",
    default: "32MiB",
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

/** Runs `monitor sink` until `shutdown` aborts; then it exits within `--drain-timeout`, whatever it waits on. */
export async function sinkCommand(args: readonly string[], env: Env, shutdown: AbortSignal): Promise<number> {
  const flags = parseFlags(args, SINK_FLAGS, env);
  const log = createLogger(logOptions(flags));
  const group = flags.group ?? "monitor-sink";
  const retentionDays = positiveInteger("retention", flags.retention, 30, 0);
  const hourlyRetentionDays = positiveInteger("hourly-retention", flags["hourly-retention"], 400, 0);
  const dailyRetentionDays = positiveInteger("daily-retention", flags["daily-retention"], 0, 0);
  checkRetentionOrder([
    ["retention", retentionDays],
    ["hourly-retention", hourlyRetentionDays],
    ["daily-retention", dailyRetentionDays],
  ]);
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
    maxBatch: positiveInteger("max-batch", flags["max-batch"], SINK_FETCH.maxBatch),
    maxWaitTimeInMs: SINK_FETCH.maxWaitTimeInMs,
    stateCacheBytes: byteSize("state-cache", flags["state-cache"], SINK_FETCH.stateCacheBytes, 0),
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

/**
 * Refuses tiers of history kept in the wrong order: reports read whole hours and days from the rollups, so a tier
 * dropped before the finer one below it would leave data that no report shows (raw checks past the hourly
 * rollups) or reports that lose days the finer tier still has (daily rollups dropped before the hourly ones).
 * 0 keeps a tier for ever.
 */
function checkRetentionOrder(tiers: readonly (readonly [flag: string, days: number])[]): void {
  const kept = (days: number) => days === 0 ? Infinity : days;
  for (let i = 1; i < tiers.length; i++) {
    const [finer, finerDays] = tiers[i - 1]!;
    const [flag, days] = tiers[i]!;
    if (kept(days) < kept(finerDays)) {
      throw new UsageError(
        `Cannot use flag '--${flag}': expected ${
          finerDays === 0 ? "0 (for ever)" : `0 or ${finerDays} or more`
        } ` +
          `to keep the rollups at least as long as '--${finer}' keeps its tier: got '${days}'`,
      );
    }
  }
}
