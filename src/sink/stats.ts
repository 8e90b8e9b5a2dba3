/**
 * The sink's counters: what the summary line logs (since the last line) and what `/metrics` serves (since
 * the start), with the lag of ./lag.ts.
 *
 * @module
 */
import type { Metric } from "../metrics.ts";
import type { LagTracker } from "./lag.ts";

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

/** Counters at zero. */
export function newStats(): SinkStats {
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
