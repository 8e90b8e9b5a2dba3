/**
 * The long-running agent of `monitor check`: probes every site on its schedule until shutdown, logs a
 * summary line every period, serves the metrics, then drains probes in flight and the outbox.
 *
 * @module
 */
import { deadline, isTimeout } from "../async.ts";
import type { CheckConfig, Output } from "./command.ts";
import type { Logger } from "../log.ts";
import { Scheduler } from "./scheduler.ts";
import { type Metric, serveMetrics } from "../metrics.ts";
import { openProber, openSink } from "./result_sink.ts";

/** Probes until `shutdown` aborts (or Kafka turns out unusable); 1 when results were left undelivered. */
export async function runForever(
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
  // Still running at the drain timeout: no result, so say how many.
  const abandoned = scheduler.inFlight;
  await close();
  const undelivered = await sink.close();
  const stats = sink.stats();
  const final = {
    probes: totals.up + totals.down,
    published: stats.published,
    resent: stats.resent,
    dropped: stats.dropped,
    ...(abandoned > 0 ? { abandoned } : {}),
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
      help: "Due probes not started because the site's previous probe ran through a whole interval.",
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
