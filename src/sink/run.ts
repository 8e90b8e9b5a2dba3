/**
 * The running `monitor sink`: prepares the database (./prepare.ts), then runs the consumer (./consumer.ts)
 * with its hourly partition maintenance, summary line and database ping until shutdown, and leaves within
 * what is left of the drain timeout.
 *
 * @module
 */
import { connectDatabase, redactUrl } from "../db/connect.ts";
import { DatabaseHandle } from "../db/handle.ts";
import { createKafka, describeKafka, type KafkaSettings } from "../kafka.ts";
import type { HealthCheck, Metric } from "../metrics.ts";
import { abortable, deadline, isTimeout } from "../async.ts";
import { SinkConsumer } from "./consumer.ts";
import type { SinkFetch } from "./group_consumer.ts";
import {
  CONNECT_DEADLINE_MS,
  DATABASE_DEADLINE_MS,
  partitionMaintenance,
  prepareDatabase,
  type PrepareOptions,
} from "./prepare.ts";

const MIB = 1024 * 1024;

/** The process's memory for the summary line, in MiB: resident, V8 heap in use and reserved, and outside it. */
function memory(): { rss_mib: number; heap_mib: number; heap_total_mib: number; external_mib: number } {
  const usage = Deno.memoryUsage();
  const mib = (bytes: number) => Math.round(bytes / MIB);
  return {
    rss_mib: mib(usage.rss),
    heap_mib: mib(usage.heapUsed),
    heap_total_mib: mib(usage.heapTotal),
    external_mib: mib(usage.external),
  };
}

const PARTITION_MAINTENANCE_EVERY_MS = 3_600_000;
/** How often the database is asked a `select 1`, so `/healthz` knows it is gone even with no checks coming. */
const HEALTH_PING_EVERY_MS = 10_000;
/** How long the sink waits for a broker's answer (kafkajs's JoinGroup waits longer, as a rebalance may). */
const SINK_REQUEST_TIMEOUT_MS = 10_000;

/** What {@linkcode consume} needs, read from the flags. */
export interface SinkOptions extends PrepareOptions {
  readonly url: string;
  readonly caFile: string | null;
  readonly summaryEveryMs: number;
  readonly stallTimeoutMs: number;
  readonly settings: KafkaSettings;
  readonly fetch: SinkFetch;
  readonly group: string;
  /** What is left of `--drain-timeout` once `shutdown` aborted. */
  readonly drain: DrainClock;
  /** Hands the running consumer's figures and its stall check to the metrics endpoint. */
  readonly serveFigures: (collect: () => readonly Metric[], stalled: HealthCheck) => void;
  /** Hands the database handle to `/healthz`. */
  readonly watchDatabase: (db: DatabaseHandle) => void;
}

/** Prepares the database, then consumes until `shutdown` aborts. */
export async function consume(options: SinkOptions): Promise<number> {
  const { url, log, shutdown, settings, group, drain } = options;
  const open = () => connectDatabase({ url, caFile: options.caFile, log, connectTimeoutSeconds: 5 });
  const db = new DatabaseHandle(open, await open(), shutdown);
  options.watchDatabase(db);
  try {
    const maintain = partitionMaintenance(db, options);
    await prepareDatabase(db, options, maintain);
    if (shutdown.aborted) return 0;
    // A hung broker (alive, answering nothing) holds a request until its timeout: the sink's requests are small
    // (fetches wait 100 ms at most), and a fresh consumer that replaces a stalled one must not wait 30 s on a
    // hung broker before it rejoins (seen in the cluster failover test: 38 s without progress).
    const kafka = createKafka(settings, log, { requestTimeoutMs: SINK_REQUEST_TIMEOUT_MS });
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
export interface DrainClock {
  readonly timeoutMs: number;
  /** Milliseconds left (very many before the shutdown). */
  remaining(): number;
  /** Waits for `promise` until the drain time is up; true if it settled (a rejection is ignored). */
  within(promise: Promise<unknown>): Promise<boolean>;
}

/** The drain clock of `shutdown`: `timeoutMs` from the moment it aborts. */
export function drainClock(shutdown: AbortSignal, timeoutMs: number): DrainClock {
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
