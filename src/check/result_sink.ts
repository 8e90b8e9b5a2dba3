/**
 * Where the agent's results go: the Kafka outbox (behind a preflight check of the broker) or NDJSON on
 * stdout, and the probe with the agent's context, shared by `--once` and the long-running agent.
 *
 * @module
 */
import { deadline } from "../async.ts";
import { PatternWorkers } from "./pattern_workers.ts";
import { CertificateCache } from "./certificates.ts";
import type { CheckConfig, Output } from "./command.ts";
import { describeKafka } from "../kafka.ts";
import type { Logger } from "../log.ts";
import type { CheckResult } from "../message.ts";
import { createProbeClient, probe } from "./probe.ts";
import { PublisherClient } from "./publisher_client.ts";
import type { Site } from "./site.ts";
import { checkKafkaOnce, isReady, type PreflightOptions, waitForKafka } from "../kafka_preflight.ts";

/** The sink of results: the outbox in front of Kafka, or stdout. */
export interface ResultSink {
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
export async function openSink(
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
export function openProber(config: CheckConfig, cancel?: AbortSignal): {
  probeSite: (site: Site, scheduledAt: number) => Promise<CheckResult>;
  close: () => Promise<void>;
} {
  const client = createProbeClient();
  const certificates = new CertificateCache();
  const patterns = new PatternWorkers();
  const context = {
    agent: config.agent,
    region: config.region,
    client,
    certificates,
    patterns,
    ...(cancel === undefined ? {} : { signal: cancel }),
  };
  return {
    probeSite: (site, scheduledAt) => probe(site, { ...context, scheduledAt }),
    close: async () => {
      patterns.close();
      client.close();
      await certificates.close();
    },
  };
}
