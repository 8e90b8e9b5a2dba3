/**
 * `monitor check`: the probing agent. Probes every site of a sites file on its own schedule and publishes
 * each result to Kafka through a bounded outbox, or prints NDJSON when no brokers are configured.
 *
 * @module
 */
import {
  COMMON_FLAGS,
  COMMON_SECTION,
  ConfigError,
  durationFlag,
  type FlagSpec,
  KAFKA_FLAGS,
  KAFKA_SECTION,
  logOptions,
  parseFlags,
  positiveInteger,
  runningFlags,
} from "../args.ts";
import type { CommandDefinition, CommandHelp } from "../help.ts";
import { deadline, isTimeout } from "../async.ts";
import { CertificateCache } from "./certificates.ts";
import { formatSites, loadSites } from "./config.ts";
import { describeKafka, type KafkaSettings, kafkaSettings } from "../kafka.ts";
import { createLogger, type Logger } from "../log.ts";
import type { CheckResult } from "../message.ts";
import { createProbeClient, probe } from "./probe.ts";
import { PublisherClient } from "./publisher_client.ts";
import { LINEAR_ENGINE_FLAGS, linearEngineEnabled } from "./regex.ts";
import { Scheduler } from "./scheduler.ts";
import type { Site } from "./site.ts";
import { formatOnceTable } from "./once_table.ts";
import { type Metric, serveMetrics } from "../metrics.ts";
import { checkKafkaOnce, isReady, type PreflightOptions, waitForKafka } from "../kafka_preflight.ts";

const CHECK_OPTIONS = {
  sites: {
    type: "string",
    env: "MONITOR_SITES",
    arg: "FILE",
    description: "sites file",
    default: "sites.toml",
  },
  once: {
    type: "boolean",
    description: "probe every site once, print the results, exit 0 if all are up, 1 otherwise",
  },
  json: { type: "boolean", description: "with --once: print NDJSON even on a terminal" },
  "dry-run": { type: "boolean", description: "print the resolved sites and the Kafka target, then exit" },
  agent: {
    type: "string",
    env: "MONITOR_AGENT",
    arg: "NAME",
    description: "agent name in every result",
    default: "the host name",
  },
  region: {
    type: "string",
    env: "MONITOR_REGION",
    arg: "LABEL",
    description: "region label in every result",
  },
  concurrency: {
    type: "string",
    env: "MONITOR_CONCURRENCY",
    arg: "N",
    description: "most probes in flight at once",
    default: "500",
  },
  outbox: {
    type: "string",
    env: "MONITOR_OUTBOX",
    arg: "N",
    description: "results held while Kafka is unreachable; past it the oldest are dropped",
    default: "100000",
  },
  "create-topic": {
    type: "boolean",
    env: "MONITOR_CREATE_TOPIC",
    description: "create the topic if it is missing",
  },
  partitions: {
    type: "string",
    env: "MONITOR_PARTITIONS",
    arg: "N",
    description: "partitions of a topic made by --create-topic",
    default: "6",
  },
  ...runningFlags(":9464"),
  "drain-timeout": {
    type: "string",
    env: "MONITOR_DRAIN_TIMEOUT",
    arg: "DUR",
    description:
      "on SIGINT/SIGTERM, how long to wait for probes and publishing; results still undelivered then " +
      "make the exit code 1",
    default: "15s",
  },
} as const satisfies Record<string, FlagSpec>;

const CHECK_FLAGS = { ...CHECK_OPTIONS, ...KAFKA_FLAGS, ...COMMON_FLAGS } as const;

/** Help of `monitor check`. */
export const CHECK_HELP: CommandHelp = {
  command: "monitor check",
  summary: "probe the sites of a sites file and publish every result to Kafka",
  sections: [
    { title: "OPTIONS", flags: CHECK_OPTIONS },
    { ...KAFKA_SECTION, title: "KAFKA (without --brokers, results go to stdout as NDJSON)" },
    COMMON_SECTION,
  ],
};

/** `monitor check` for the command table of `main.ts`. */
export const CHECK_COMMAND: CommandDefinition = {
  help: CHECK_HELP,
  flags: CHECK_FLAGS,
  run: (args, env, shutdown) => checkCommand(args, env, shutdown),
};

/** Where `check` writes results and text meant for the user. */
export interface Output {
  readonly write: (text: string) => void;
  readonly isTerminal: boolean;
}

const encoder = new TextEncoder();

/** Standard output. */
export const stdoutOutput: Output = {
  write: (text) => {
    const bytes = encoder.encode(text);
    let written = 0;
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
  },
  isTerminal: Deno.stdout.isTerminal(),
};

interface CheckConfig {
  readonly sites: readonly Site[];
  readonly agent: string;
  readonly region: string | null;
  readonly concurrency: number;
  readonly outboxSize: number;
  readonly createTopic: boolean;
  readonly partitions: number;
  readonly summaryEveryMs: number;
  readonly drainTimeoutMs: number;
  readonly metrics: string | null;
  readonly kafka: KafkaSettings | null;
}

/**
 * Runs `monitor check` with its arguments (after the subcommand) until `shutdown` aborts.
 * Returns the exit code; throws `UsageError` or `ConfigError` for bad input (exit 2).
 */
export async function checkCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  shutdown: AbortSignal,
  output: Output = stdoutOutput,
): Promise<number> {
  const flags = parseFlags(args, CHECK_FLAGS, env);
  const log = createLogger(logOptions(flags));
  const sitesFile = flags.sites ?? "sites.toml";
  const sites = await loadSites(sitesFile, env);
  const patterned = sites.find((site) => site.regex !== null);
  if (patterned !== undefined && !linearEngineEnabled()) {
    throw new ConfigError(
      `${sitesFile}: Cannot bound the regex of site '${patterned.name}': V8's linear-time regex engine is ` +
        `off; run deno with --v8-flags=${LINEAR_ENGINE_FLAGS} (deno task dev and dist/monitor do)`,
    );
  }
  const agent = flags.agent ?? Deno.hostname();
  const config: CheckConfig = {
    sites,
    agent,
    region: flags.region ?? null,
    concurrency: positiveInteger("concurrency", flags.concurrency, 500),
    outboxSize: positiveInteger("outbox", flags.outbox, 100_000),
    createTopic: flags["create-topic"],
    partitions: positiveInteger("partitions", flags.partitions, 6),
    summaryEveryMs: durationFlag("summary-every", flags["summary-every"], 60_000),
    drainTimeoutMs: durationFlag("drain-timeout", flags["drain-timeout"], 15_000),
    metrics: flags.metrics ?? null,
    kafka: await kafkaSettings(flags, env, `monitor-check-${agent}`),
  };
  if (flags["dry-run"]) {
    output.write(formatSites(sites));
    output.write(`\nagent: ${agent}${config.region ? ` (region ${config.region})` : ""}\n`);
    output.write(`publish to: ${config.kafka ? describeKafka(config.kafka) : "stdout (NDJSON)"}\n`);
    return 0;
  }
  if (flags.once) return await runOnce(config, log, output, flags.json || !output.isTerminal, shutdown);
  return await runForever(config, log, output, shutdown);
}

/** The sink of results: the outbox in front of Kafka, or stdout. */
interface ResultSink {
  accept(result: CheckResult): void;
  /**
   * Flushes and disconnects; returns how many results could not be delivered. Throws the error that made
   * Kafka unusable (see `failed`), if any.
   */
  close(): Promise<number>;
  /** Aborts, with the error as its reason, when Kafka turns out to be unusable (a permanent error). */
  readonly failed: AbortSignal;
  readonly stats: () => {
    published: number;
    resent: number;
    outbox: number;
    dropped: number;
    failures: number;
  };
}

/**
 * Opens the Kafka outbox when brokers are configured, else NDJSON on `output` (or nothing, when not `print`).
 * Kafka is checked once first: a permanent error (a certificate, a password, a missing topic without
 * `--create-topic`) is thrown before any probe runs. With the broker unreachable, probing starts anyway and
 * results wait in the outbox while the check is retried; the publisher starts once it passes.
 */
async function openSink(
  config: CheckConfig,
  log: Logger,
  output: Output,
  print: boolean,
  shutdown: AbortSignal,
): Promise<ResultSink> {
  if (config.kafka === null) {
    let printed = 0;
    return {
      accept(result) {
        if (!print) return;
        output.write(JSON.stringify(result) + "\n");
        printed++;
      },
      close: () => Promise.resolve(0),
      failed: new AbortController().signal,
      stats: () => ({ published: printed, resent: 0, outbox: 0, dropped: 0, failures: 0 }),
    };
  }
  const settings = config.kafka;
  const closing = new AbortController();
  const preflight: PreflightOptions = {
    role: "agent",
    createTopic: config.createTopic,
    log,
    signal: AbortSignal.any([shutdown, closing.signal]),
  };
  const first = await checkKafkaOnce(settings, preflight);
  // Publishing runs in a worker: kafkajs's encoding and gzip would otherwise take their share of every
  // probe's CPU time on the thread that runs the schedule.
  const publisher = new PublisherClient({
    settings,
    outboxSize: config.outboxSize,
    createTopic: config.createTopic,
    partitions: config.partitions,
    log,
  });
  const failure = new AbortController();
  publisher.failed.addEventListener("abort", () => failure.abort(publisher.failed.reason), { once: true });
  let ready: Promise<unknown> = Promise.resolve();
  if (isReady(first, preflight)) {
    publisher.start();
  } else {
    ready = waitForKafka(settings, preflight, first).then(
      (ok) => ok && publisher.start(),
      (error) => failure.abort(error),
    );
  }
  log.info("publishing to Kafka", { target: describeKafka(settings) });
  return {
    accept: (result) => publisher.push(result),
    async close() {
      // Still waiting for Kafka: the drain time is all it gets, the wait and the flush together.
      const end = Date.now() + config.drainTimeoutMs;
      await deadline(ready, config.drainTimeoutMs).catch(() => {});
      closing.abort();
      const undelivered = await publisher.stop(failure.signal.aborted ? 0 : Math.max(0, end - Date.now()));
      if (failure.signal.aborted) throw failure.signal.reason;
      return undelivered;
    },
    failed: failure.signal,
    stats: () => publisher.stats(),
  };
}

/** The probe with this agent's context, and how to release what it holds. */
function openProber(config: CheckConfig): {
  probeSite: (site: Site, scheduledAt: number) => Promise<CheckResult>;
  close: () => Promise<void>;
} {
  const client = createProbeClient();
  const certificates = new CertificateCache();
  const context = { agent: config.agent, region: config.region, client, certificates };
  return {
    probeSite: (site, scheduledAt) => probe(site, { ...context, scheduledAt }),
    close: async () => {
      client.close();
      await certificates.close();
    },
  };
}

async function runOnce(
  config: CheckConfig,
  log: Logger,
  output: Output,
  ndjson: boolean,
  shutdown: AbortSignal,
): Promise<number> {
  // --once prints its results itself (NDJSON as they come, or a table at the end), Kafka or not.
  const sink = await openSink(config, log, output, false, shutdown);
  const { probeSite, close } = openProber(config);
  const results: CheckResult[] = [];
  try {
    const scheduledAt = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < config.sites.length) {
        const result = await probeSite(config.sites[next++]!, scheduledAt);
        results.push(result);
        sink.accept(result);
        if (ndjson) output.write(JSON.stringify(result) + "\n");
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.concurrency, config.sites.length) }, worker));
  } finally {
    await close();
  }
  const undelivered = await sink.close();
  if (!ndjson) {
    const order = new Map(config.sites.map((site, index) => [site.name, index]));
    results.sort((a, b) => order.get(a.site)! - order.get(b.site)!);
    output.write(formatOnceTable(results));
  }
  if (undelivered > 0) {
    log.error("results could not be published before the drain timeout", { undelivered });
    return 1;
  }
  return results.every((result) => result.up) ? 0 : 1;
}

/** Probes until `shutdown` aborts (or Kafka turns out unusable); 1 when results were left undelivered. */
async function runForever(
  config: CheckConfig,
  log: Logger,
  output: Output,
  shutdown: AbortSignal,
): Promise<number> {
  // Bound before anything starts, so that a taken address stops the agent before its first probe; the
  // figures are wired in once the outbox and the scheduler exist.
  let collect: () => readonly Metric[] = () => [];
  const metrics = config.metrics === null ? null : serveMetrics(config.metrics, () => collect(), log);
  const sink = await openSink(config, log, output, true, shutdown).catch(async (error) => {
    await metrics?.close();
    throw error;
  });
  const { probeSite, close } = openProber(config);
  const counts = { probes: 0, up: 0, down: 0 };
  const totals = { up: 0, down: 0 };
  let lastLagP99 = 0;
  const scheduler = new Scheduler(
    config.sites,
    (site) => site.intervalMs,
    (site) => site.name,
    async (site, scheduledAt) => {
      const result = await probeSite(site, scheduledAt);
      counts.probes++;
      if (result.up) {
        counts.up++;
        totals.up++;
      } else {
        counts.down++;
        totals.down++;
      }
      sink.accept(result);
    },
    { concurrency: config.concurrency, onRunError: (error) => log.error("probe failed", { error }) },
  );
  log.info("agent started", {
    sites: config.sites.length,
    agent: config.agent,
    region: config.region,
    concurrency: config.concurrency,
  });
  scheduler.start();
  collect = () => {
    const stats = sink.stats();
    return agentMetrics({ ...totals, skipped: scheduler.skippedTotal, lagP99: lastLagP99, ...stats });
  };
  const summary = setInterval(() => {
    const stats = scheduler.takeStats();
    lastLagP99 = stats.lag.percentile(99);
    log.info("summary", {
      probes: counts.probes,
      up: counts.up,
      down: counts.down,
      skipped: stats.skipped,
      ...sink.stats(),
      lag_p50_ms: stats.lag.percentile(50),
      lag_p99_ms: stats.lag.percentile(99),
      lag_max_ms: Math.round(stats.lag.max),
    });
    counts.probes = counts.up = counts.down = 0;
  }, config.summaryEveryMs);
  const stop = AbortSignal.any([shutdown, sink.failed]);
  await new Promise<void>((resolve) => {
    if (stop.aborted) resolve();
    stop.addEventListener("abort", () => resolve(), { once: true });
  });
  const stopping = sink.failed.aborted
    ? "stopping: Kafka cannot be used"
    : "stopping: finishing probes in flight and flushing results";
  log.info(stopping, { in_flight: scheduler.inFlight });
  clearInterval(summary);
  await metrics?.close();
  // Probes in flight finish within their own timeouts (a probe cut short would report a failure that the
  // site did not have); the drain timeout bounds the wait, and results of probes still running are lost.
  await deadline(scheduler.stop(), config.drainTimeoutMs).catch((error) => {
    if (!isTimeout(error)) throw error;
  });
  await close();
  const undelivered = await sink.close();
  const stats = sink.stats();
  const final = {
    probes: totals.up + totals.down,
    published: stats.published,
    resent: stats.resent,
    dropped: stats.dropped,
  };
  if (undelivered > 0) {
    log.error("stopped with results unpublished", { ...final, undelivered });
    return 1;
  }
  log.info("stopped", final);
  return 0;
}

function agentMetrics(values: {
  up: number;
  down: number;
  skipped: number;
  lagP99: number;
  published: number;
  resent: number;
  outbox: number;
  dropped: number;
  failures: number;
}): Metric[] {
  return [
    { name: "monitor_probes_up_total", help: "Probes whose site was up.", type: "counter", value: values.up },
    {
      name: "monitor_probes_down_total",
      help: "Probes whose site was down.",
      type: "counter",
      value: values.down,
    },
    {
      name: "monitor_probes_skipped_total",
      help: "Due probes not started because the site's previous probe was still running.",
      type: "counter",
      value: values.skipped,
    },
    {
      name: "monitor_schedule_lag_p99_ms",
      help: "p99 of the time from due to start over the last summary period.",
      type: "gauge",
      value: values.lagP99,
    },
    {
      name: "monitor_published_total",
      help: "Results acknowledged by Kafka.",
      type: "counter",
      value: values.published,
    },
    {
      name: "monitor_resent_total",
      help: "Results sent again because Kafka's answer to a send did not cover their partition.",
      type: "counter",
      value: values.resent,
    },
    {
      name: "monitor_publish_failures_total",
      help: "Failed attempts to publish a batch (each retried).",
      type: "counter",
      value: values.failures,
    },
    {
      name: "monitor_outbox_depth",
      help: "Results not yet acknowledged by Kafka (in the outbox or being sent).",
      type: "gauge",
      value: values.outbox,
    },
    {
      name: "monitor_outbox_dropped_total",
      help: "Results dropped because the outbox was full.",
      type: "counter",
      value: values.dropped,
    },
  ];
}
