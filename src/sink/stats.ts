/**
 * The sink's counters: what the summary line logs (since the last line) and what `/metrics` serves (since
 * the start), with the lag of ./lag.ts.
 *
 * @module
 */
import type { IncomingCheck } from "../db/batch.ts";
import type { BatchResult } from "../db/writer.ts";
import { Histogram } from "../histogram.ts";
import type { Metric } from "../metrics.ts";
import type { LagTracker } from "./lag.ts";
import type { StateCache } from "../db/state_cache.ts";

/** Counters for the summary line. */
export interface SinkStats extends Record<string, unknown> {
  stored: number;
  duplicates: number;
  skipped: number;
  dead_letters: number;
  batches: number;
  lag: number;
  /** Lag per assigned partition, as `partition:lag,...`. */
  partition_lag: string;
  stalls: number;
  last_commit: string | null;
  latency_p99_ms: number;
  /** Sites whose state rows are kept in memory, and what they take (src/db/state_cache.ts). */
  state_cache_sites: number;
  state_cache_mib: number;
}

/** The sink's metrics: counters since the start, and the lag per partition and in total. */
export function sinkMetrics(totals: SinkStats, tracker: LagTracker): Metric[] {
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
    counter(
      "monitor_sink_stalls_total",
      "Times the consumer was replaced because a partition with lag stored nothing for the stall timeout.",
      totals.stalls,
    ),
    {
      name: "monitor_sink_consumer_lag",
      help: "Messages behind the high watermark of the assigned partitions, summed.",
      type: "gauge",
      value: tracker.totalLag(),
    },
    ...[...tracker.lag()].map(([partition, lag]): Metric => ({
      name: "monitor_sink_partition_lag",
      help: "Messages behind the partition's high watermark (read from the broker) not yet stored.",
      type: "gauge",
      value: lag,
      labels: { partition: String(partition) },
    })),
  ];
}

/**
 * What the sink has done: counters since the last summary line and since the start, and the end-to-end
 * latency of the checks stored since the last line.
 */
export class SinkCounters {
  #stats = newStats();
  readonly #totals = newStats();
  #latency = new Histogram();

  /** Counts a stored transaction and the latency of its checks (from their probe's end to now). */
  stored(result: BatchResult, checks: readonly IncomingCheck[]): void {
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

  /** Counts a consumer replaced for a stall. */
  stalled(): void {
    this.#stats.stalls++;
    this.#totals.stalls++;
  }

  /** Notes that a partition's offset was stored now. */
  committed(): void {
    this.#stats.last_commit = new Date().toISOString();
  }

  /** Counters since the start, and the lag, for the metrics endpoint. */
  metrics(tracker: LagTracker): Metric[] {
    return sinkMetrics(this.#totals, tracker);
  }

  /** Counters since the last call, with the lag and the state copy's size now. */
  take(tracker: LagTracker, cache: StateCache): SinkStats {
    const stats = {
      ...this.#stats,
      lag: tracker.totalLag(),
      partition_lag: [...tracker.lag()].map(([partition, lag]) => `${partition}:${lag}`).join(","),
      latency_p99_ms: this.#latency.percentile(99),
      state_cache_sites: cache.size,
      // MiB to a tenth: the copy is a few MiB.
      state_cache_mib: Math.round((cache.bytes / (1024 * 1024)) * 10) / 10,
    };
    this.#stats = { ...newStats(), last_commit: stats.last_commit };
    this.#latency = new Histogram();
    return stats;
  }
}

/** Counters at zero. */
function newStats(): SinkStats {
  return {
    stored: 0,
    duplicates: 0,
    skipped: 0,
    dead_letters: 0,
    batches: 0,
    lag: 0,
    partition_lag: "",
    stalls: 0,
    last_commit: null,
    latency_p99_ms: 0,
    state_cache_sites: 0,
    state_cache_mib: 0,
  };
}
