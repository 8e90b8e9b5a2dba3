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
import { type HealthCheck, serveMetrics } from "../metrics.ts";
import { abortable, deadline, isTimeout } from "../async.ts";
import { waitForKafka } from "../kafka_preflight.ts";
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
  --metrics HOST:PORT     serve Prometheus metrics on /metrics and health on /healthz, e.g. :9465
                          (MONITOR_METRICS; default off)
  --drain-timeout DUR     on SIGINT/SIGTERM, how long to wait for the batch in hand and for leaving the group
                          (MONITOR_DRAIN_TIMEOUT; default 15s)

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
  "drain-timeout": { type: "string", env: "MONITOR_DRAIN_TIMEOUT" },
} as const;

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
  if (flags.help) {
    console.log(SINK_USAGE);
    return 0;
  }
  const log = createLogger({ format: logFormat(flags["log-format"]) });
  const group = flags.group ?? "monitor-sink";
  const retentionDays = positiveInteger("retention", flags.retention, 90, 0);
  const summaryEveryMs = durationFlag("summary-every", flags["summary-every"], 60_000);
  const drainTimeoutMs = durationFlag("drain-timeout", flags["drain-timeout"], 15_000);
  const url = databaseUrl(flags["database-url"]);
  const settings = await kafkaSettings(flags, env, `monitor-sink-${group}`);
  if (settings === null) throw new UsageError("Cannot consume: set '--brokers' or MONITOR_BROKERS");
  const drain = drainClock(shutdown, drainTimeoutMs);

  const open = () =>
    connectDatabase({ url, caFile: flags["database-ca"] ?? null, log, connectTimeoutSeconds: 5 });
  let db: DatabaseHandle | null = null;
  let sink: SinkConsumer | null = null;
  // Served from the start, so that a sink waiting for its database or broker is seen waiting.
  const health: HealthCheck = () => db?.unreachable ? `database unreachable: ${db.unreachable}` : null;
  const metrics = flags.metrics === undefined ? null : serveMetrics(
    flags.metrics,
    () => [
      {
        name: "monitor_sink_database_up",
        help: "1 while the database answers, 0 while it cannot be reached.",
        type: "gauge",
        value: db?.unreachable ? 0 : 1,
      },
      ...(sink?.metrics() ?? []),
    ],
    log,
    health,
  );
  try {
    // A permanent Kafka error (certificate, password, ACL) ends the sink before anything else; an
    // unreachable broker or a missing topic is waited for.
    if (!await waitForKafka(settings, { role: "sink", group, log, signal: shutdown })) return 0;
    const database = db = new DatabaseHandle(open, await open(), shutdown);
    // The database is waited for like the broker: a sink started before its database keeps trying.
    await retrying(
      log,
      shutdown,
      "connect to the database",
      () => database.run("connect to the database", (sql) => sql`select 1`, CONNECT_DEADLINE_MS),
    );
    if (!flags["no-migrate"]) {
      await retrying(
        log,
        shutdown,
        "apply migrations",
        () => database.run("apply migrations", (sql) => migrate(sql, log), MIGRATION_DEADLINE_MS),
      );
    }
    const maintain = () =>
      database.run(
        "maintain partitions",
        (sql) => maintainPartitions(sql, { retentionDays, log }),
        DATABASE_DEADLINE_MS,
      );
    await retrying(log, shutdown, "prepare partitions", maintain);
    if (shutdown.aborted) return 0;
    const kafka = createKafka(settings, log);
    log.info("sink starting", { kafka: describeKafka(settings), group, database: redactUrl(url) });
    const consumer = sink = new SinkConsumer(kafka, database, {
      group,
      topic: settings.topic,
      log,
      shutdown,
      deadlineMs: DATABASE_DEADLINE_MS,
    });
    const maintenance = setInterval(() => {
      maintain().catch((error) => {
        if (!shutdown.aborted) {
          log.warn("partition maintenance failed; will retry", { error: (error as Error).message });
        }
      });
    }, PARTITION_MAINTENANCE_EVERY_MS);
    const summary = setInterval(() => log.info("summary", consumer.takeStats()), summaryEveryMs);
    // An idle sink makes no database calls; this one keeps /healthz true while no checks arrive.
    const ping = setInterval(() => {
      database.run("reach the database", (sql) => sql`select 1`, CONNECT_DEADLINE_MS).catch(() => {});
    }, HEALTH_PING_EVERY_MS);
    try {
      const running = consumer.run();
      await abortable(running, shutdown).catch((error) => {
        if (!shutdown.aborted) throw error;
      });
      // Leaving the group, or a Kafka request under way, may wait on a broker that is gone.
      if (!await drain.within(running)) {
        log.warn("stopping: the consumer did not finish within the drain timeout; leaving without it", {
          drain_timeout_ms: drainTimeoutMs,
        });
      }
    } finally {
      clearInterval(maintenance);
      clearInterval(summary);
      clearInterval(ping);
      log.info("stopped", consumer.takeStats());
    }
    return 0;
  } finally {
    if (metrics !== null) await drain.within(metrics.close());
    if (db !== null) await drain.within(db.end(Math.max(0, Math.floor(drain.remaining() / 1000))));
  }
}

/** The time left of the drain timeout, which starts when `shutdown` aborts. */
function drainClock(shutdown: AbortSignal, drainTimeoutMs: number) {
  let end = Infinity;
  const started = () => end = Date.now() + drainTimeoutMs;
  if (shutdown.aborted) started();
  else shutdown.addEventListener("abort", started, { once: true });
  const remaining = () => Math.max(0, Math.min(end - Date.now(), 2 ** 31 - 1));
  return {
    remaining,
    /** Waits for `promise` until the drain time is up; true if it settled (a rejection is ignored). */
    within: (promise: Promise<unknown>): Promise<boolean> =>
      deadline(promise, remaining()).then(() => true, (error) => !isTimeout(error)),
  };
}
