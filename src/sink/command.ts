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
import { createKafka, describeKafka, type KafkaSettings, kafkaSettings } from "../kafka.ts";
import { createLogger, type Logger } from "../log.ts";
import { type HealthCheck, type Metric, serveMetrics } from "../metrics.ts";
import { retrying } from "../db/retry.ts";
import { SinkConsumer } from "./consumer.ts";

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
    description: "drop check partitions older than this; 0 keeps everything",
    default: "90",
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
    default: "30s",
  },
} as const satisfies Record<string, FlagSpec>;

const SINK_FLAGS = { ...SINK_OPTIONS, ...KAFKA_FLAGS, ...DATABASE_FLAGS, ...COMMON_FLAGS } as const;

/** Help of `monitor sink`. */
export const SINK_HELP: CommandHelp = {
  command: "monitor sink",
  summary: "consume check results from Kafka and store them in PostgreSQL",
  sections: [
    { title: "OPTIONS", flags: SINK_OPTIONS },
    { ...KAFKA_SECTION, title: "KAFKA (--brokers is required)" },
    DATABASE_SECTION,
    COMMON_SECTION,
  ],
};

/** `monitor sink` for the command table of `main.ts`. */
export const SINK_COMMAND: CommandDefinition = { help: SINK_HELP, flags: SINK_FLAGS, run: sinkCommand };

type Env = Readonly<Record<string, string | undefined>>;

const PARTITION_MAINTENANCE_EVERY_MS = 3_600_000;
/** How long one database call may take before the pool is replaced (see src/db/handle.ts). */
const DATABASE_DEADLINE_MS = 30_000;

/** Runs `monitor sink` until `shutdown` aborts. */
export async function sinkCommand(args: readonly string[], env: Env, shutdown: AbortSignal): Promise<number> {
  const flags = parseFlags(args, SINK_FLAGS, env);
  const log = createLogger(logOptions(flags));
  const group = flags.group ?? "monitor-sink";
  const retentionDays = positiveInteger("retention", flags.retention, 90, 0);
  const summaryEveryMs = durationFlag("summary-every", flags["summary-every"], 60_000);
  const stallTimeoutMs = durationFlag("stall-timeout", flags["stall-timeout"], 30_000);
  if (stallTimeoutMs < 1_000) {
    throw new UsageError(
      `Cannot use flag '--stall-timeout': expected 1s or more: got '${flags["stall-timeout"]}'`,
    );
  }
  const url = databaseUrl(flags["database-url"]);
  const settings = await kafkaSettings(flags, env, `monitor-sink-${group}`);
  if (settings === null) throw new UsageError("Cannot consume: set '--brokers' or MONITOR_BROKERS");

  // Bound before anything starts, so that a taken address stops the sink before it connects; the figures
  // are wired in once the consumer exists.
  let collect: () => readonly Metric[] = () => [];
  let health: HealthCheck = () => null;
  const metrics = flags.metrics === undefined
    ? null
    : serveMetrics(flags.metrics, () => collect(), log, () => health());
  try {
    return await consume({
      url,
      caFile: flags["database-ca"] ?? null,
      migrate: !flags["no-migrate"],
      retentionDays,
      summaryEveryMs,
      stallTimeoutMs,
      settings,
      group,
      log,
      shutdown,
      serveFigures: (figures, check) => {
        collect = figures;
        health = check;
      },
    });
  } finally {
    await metrics?.close();
  }
}

/** What {@linkcode consume} needs, read from the flags. */
interface SinkOptions {
  readonly url: string;
  readonly caFile: string | null;
  readonly migrate: boolean;
  readonly retentionDays: number;
  readonly summaryEveryMs: number;
  readonly stallTimeoutMs: number;
  readonly settings: KafkaSettings;
  readonly group: string;
  readonly log: Logger;
  readonly shutdown: AbortSignal;
  /** Hands the running consumer's figures and health to the metrics endpoint. */
  readonly serveFigures: (collect: () => readonly Metric[], health: HealthCheck) => void;
}

/** Prepares the database, then consumes until `shutdown` aborts. */
async function consume(options: SinkOptions): Promise<number> {
  const { url, log, shutdown, settings, group } = options;
  const open = () => connectDatabase({ url, caFile: options.caFile, log, connectTimeoutSeconds: 5 });
  const db = new DatabaseHandle(open, await open());
  try {
    // Migrations and partitions wait for the database like everything else: a sink started before its
    // database keeps trying rather than exiting.
    if (options.migrate) {
      await retrying(
        log,
        shutdown,
        "apply migrations",
        () => db.run("apply migrations", (sql) => migrate(sql, log), 120_000),
      );
    }
    const maintain = () =>
      db.run(
        "maintain partitions",
        (sql) => maintainPartitions(sql, { retentionDays: options.retentionDays, log }),
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
    });
    const maintenance = setInterval(() => {
      maintain().catch((error) =>
        log.warn("partition maintenance failed; will retry", { error: (error as Error).message })
      );
    }, PARTITION_MAINTENANCE_EVERY_MS);
    const summary = setInterval(() => log.info("summary", sink.takeStats()), options.summaryEveryMs);
    options.serveFigures(() => sink.metrics(), () => sink.health());
    try {
      await sink.run();
    } finally {
      clearInterval(maintenance);
      clearInterval(summary);
      log.info("stopped", sink.takeStats());
    }
    return 0;
  } finally {
    await db.end(5);
  }
}
