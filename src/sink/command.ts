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
  DATABASE_FLAGS,
  durationFlag,
  KAFKA_FLAGS,
  logFormat,
  parseFlags,
  positiveInteger,
  UsageError,
} from "../args.ts";
import { connectDatabase, redactUrl } from "../db/connect.ts";
import { DatabaseHandle } from "../db/handle.ts";
import { migrate } from "../db/migrate.ts";
import { maintainPartitions } from "../db/partitions.ts";
import { createKafka, describeKafka, kafkaSettings } from "../kafka.ts";
import { createLogger } from "../log.ts";
import { serveMetrics } from "../metrics.ts";
import { databaseUrl } from "./migrate_command.ts";
import { retrying } from "../db/retry.ts";
import { SinkConsumer } from "./consumer.ts";

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
  --stall-timeout DUR     a partition with lag that stores nothing this long is a stall: logged, /healthz
                          answers 503, and the consumer rejoins the group (MONITOR_STALL_TIMEOUT; default 30s)

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

const SINK_FLAGS = {
  ...COMMON_FLAGS,
  ...KAFKA_FLAGS,
  ...DATABASE_FLAGS,
  group: { type: "string", env: "MONITOR_GROUP" },
  retention: { type: "string", env: "MONITOR_RETENTION_DAYS" },
  "no-migrate": { type: "boolean", env: "MONITOR_NO_MIGRATE" },
  "summary-every": { type: "string", env: "MONITOR_SUMMARY_EVERY" },
  metrics: { type: "string", env: "MONITOR_METRICS" },
  "stall-timeout": { type: "string", env: "MONITOR_STALL_TIMEOUT" },
} as const;

type Env = Readonly<Record<string, string | undefined>>;

const PARTITION_MAINTENANCE_EVERY_MS = 3_600_000;
/** How long one database call may take before the pool is replaced (see src/db/handle.ts). */
const DATABASE_DEADLINE_MS = 30_000;

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
  const stallTimeoutMs = durationFlag("stall-timeout", flags["stall-timeout"], 30_000);
  if (stallTimeoutMs < 1_000) {
    throw new UsageError(
      `Cannot use flag '--stall-timeout': expected 1s or more: got '${flags["stall-timeout"]}'`,
    );
  }
  const url = databaseUrl(flags["database-url"]);
  const settings = await kafkaSettings(flags, env, `monitor-sink-${group}`);
  if (settings === null) throw new UsageError("Cannot consume: set '--brokers' or MONITOR_BROKERS");

  const open = () =>
    connectDatabase({ url, caFile: flags["database-ca"] ?? null, log, connectTimeoutSeconds: 5 });
  const db = new DatabaseHandle(open, await open());
  try {
    // Migrations and partitions wait for the database like everything else: a sink started before its
    // database keeps trying rather than exiting.
    if (!flags["no-migrate"]) {
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
        (sql) => maintainPartitions(sql, { retentionDays, log }),
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
      stallTimeoutMs,
    });
    const maintenance = setInterval(() => {
      maintain().catch((error) =>
        log.warn("partition maintenance failed; will retry", { error: (error as Error).message })
      );
    }, PARTITION_MAINTENANCE_EVERY_MS);
    const summary = setInterval(() => log.info("summary", sink.takeStats()), summaryEveryMs);
    const metrics = flags.metrics === undefined
      ? null
      : serveMetrics(flags.metrics, () => sink.metrics(), log, () => sink.health());
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
    await db.end(5);
  }
}
