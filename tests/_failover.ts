/**
 * What the cluster failover test measures: samples of the agent's and the sink's /metrics, the offsets the
 * sink stored in PostgreSQL and the partitions' high watermarks, taken every second, and the figures per
 * failure derived from them (how long the agent and the sink took to recover, how many results were re-sent,
 * the longest time a partition with lag stored nothing).
 *
 * @module
 */
import { deadline, delay } from "../src/async.ts";

/** One look at the system. Null where a source did not answer in time. */
export interface ClusterSample {
  readonly published: number | null;
  readonly resent: number | null;
  readonly outbox: number | null;
  /** The sink's own total lag (monitor_sink_consumer_lag). */
  readonly sinkLag: number | null;
  /** Next offset stored in PostgreSQL per partition. */
  readonly stored: Map<number, bigint>;
  /** High watermark per partition, from the broker. */
  readonly high: Map<number, bigint> | null;
}

interface Timed extends ClusterSample {
  readonly t: number;
  /** Lag per partition as the test measures it: high watermark (last known) minus stored next offset. */
  readonly lag: Map<number, number>;
  /** Per partition: milliseconds since it last stored something or had no lag. */
  readonly stuckMs: Map<number, number>;
}

/** Figures of one failure, from its start to the next one's. */
export interface EventFigures {
  readonly event: string;
  readonly at_s: number;
  /** The longest time the agent's published count did not grow. */
  readonly agent_gap_s: number;
  /** Until the agent's outbox was back under the backlog threshold. */
  readonly agent_caught_up_s: number;
  /** Until the test's own measure of the sink's lag was back under the backlog threshold. */
  readonly sink_caught_up_s: number;
  readonly resent: number;
  readonly max_sink_lag: number;
  readonly max_stuck_s: number;
}

/** A backlog of this many results (under 3 s of results) or fewer counts as caught up. */
const BACKLOG = 1_000;

/** A free loopback port (closed again; the caller binds it soon after). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The unlabelled samples of a /metrics page on a loopback port, or null when it does not answer in 2 s. */
export async function scrape(port: number): Promise<Map<string, number> | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) });
    const values = new Map<string, number>();
    for (const line of (await response.text()).split("\n")) {
      const match = /^([a-z_]+) (\S+)$/.exec(line);
      if (match !== null) values.set(match[1]!, Number(match[2]));
    }
    return values;
  } catch {
    return null;
  }
}

/** Records samples and failures, and derives the figures. */
export class FailoverRecorder {
  readonly #start = Date.now();
  readonly #samples: Timed[] = [];
  readonly #events: { name: string; t: number }[] = [];
  readonly #high = new Map<number, bigint>();
  readonly #progress = new Map<number, { stored: bigint; t: number }>();

  /** The last sample, if any. */
  get latest(): Timed | undefined {
    return this.#samples.at(-1);
  }

  /** Marks the start of a failure. */
  event(name: string): void {
    const t = Date.now() - this.#start;
    this.#events.push({ name, t });
    console.error(`[${(t / 1_000).toFixed(1)}s] ${name}`);
  }

  /** Samples every `ms` until `stop()`. A sample that takes over 5 s is skipped. */
  sampleEvery(ms: number, take: () => Promise<ClusterSample>): { stop(): Promise<void> } {
    const stopping = new AbortController();
    const loop = (async () => {
      while (!stopping.signal.aborted) {
        const sample = await deadline(take(), 5_000).catch(() => null);
        if (sample !== null) this.#add(sample);
        await delay(ms, { signal: stopping.signal }).catch(() => {});
      }
    })();
    return {
      stop: async () => {
        stopping.abort();
        await loop;
      },
    };
  }

  #add(sample: ClusterSample): void {
    const t = Date.now() - this.#start;
    for (const [partition, high] of sample.high ?? []) this.#high.set(partition, high);
    const lag = new Map<number, number>();
    const stuckMs = new Map<number, number>();
    for (const [partition, stored] of sample.stored) {
      const high = this.#high.get(partition) ?? stored;
      const behind = high > stored ? Number(high - stored) : 0;
      lag.set(partition, behind);
      const last = this.#progress.get(partition);
      if (last === undefined || stored > last.stored || behind === 0) {
        this.#progress.set(partition, { stored, t });
      }
      stuckMs.set(partition, t - this.#progress.get(partition)!.t);
    }
    this.#samples.push({ ...sample, t, lag, stuckMs });
  }

  /** The figures per failure, a table of them, and the totals the test asserts on. */
  report(): {
    text: string;
    figures: {
      events: EventFigures[];
      maxStuckMs: number;
      maxStuckPartition: number | null;
      maxSinkLagDuringOutage: number;
    };
  } {
    const events = this.#events.map((event, i) => this.#figures(event, this.#events[i + 1]?.t ?? Infinity));
    let maxStuckMs = 0;
    let maxStuckPartition: number | null = null;
    for (const sample of this.#samples) {
      for (const [partition, ms] of sample.stuckMs) {
        if (ms > maxStuckMs) [maxStuckMs, maxStuckPartition] = [ms, partition];
      }
    }
    const firstEvent = this.#events[0]?.t ?? Infinity;
    const maxSinkLagDuringOutage = Math.max(
      0,
      ...this.#samples.filter((s) => s.t >= firstEvent).map((s) => s.sinkLag ?? 0),
    );
    const header =
      "event | at s | agent gap s | agent caught up s | sink caught up s | re-sent | max sink lag | " +
      "max stuck s";
    const rows = events.map((e) =>
      [
        e.event,
        e.at_s,
        e.agent_gap_s,
        e.agent_caught_up_s,
        e.sink_caught_up_s,
        e.resent,
        e.max_sink_lag,
        e.max_stuck_s,
      ]
        .join(" | ")
    );
    const text = [
      header,
      ...rows,
      `longest without progress while lagging: ${maxStuckMs / 1_000}s ` +
      `(partition ${maxStuckPartition}); samples: ${this.#samples.length}`,
    ].join("\n");
    return { text, figures: { events, maxStuckMs, maxStuckPartition, maxSinkLagDuringOutage } };
  }

  #figures(event: { name: string; t: number }, end: number): EventFigures {
    const window = this.#samples.filter((s) => s.t >= event.t && s.t < end);
    const before = this.#samples.filter((s) => s.t < event.t).at(-1);
    let lastGrowth = event.t;
    let lastPublished = before?.published ?? null;
    let gap = 0;
    let agentBehind = event.t;
    let sinkBehind = event.t;
    let maxStuck = 0;
    for (const sample of window) {
      if (sample.published !== null) {
        if (lastPublished === null || sample.published > lastPublished) lastGrowth = sample.t;
        lastPublished = sample.published;
        gap = Math.max(gap, sample.t - lastGrowth);
      }
      if ((sample.outbox ?? 0) > BACKLOG) agentBehind = sample.t;
      if ([...sample.lag.values()].reduce((a, b) => a + b, 0) > BACKLOG) sinkBehind = sample.t;
      maxStuck = Math.max(maxStuck, ...sample.stuckMs.values());
    }
    const resentAt = (sample: Timed | undefined) => sample?.resent ?? 0;
    const seconds = (ms: number) => Math.round(ms / 100) / 10;
    return {
      event: event.name,
      at_s: seconds(event.t),
      agent_gap_s: seconds(gap),
      agent_caught_up_s: seconds(agentBehind - event.t),
      sink_caught_up_s: seconds(sinkBehind - event.t),
      resent: resentAt(window.at(-1)) - resentAt(before),
      max_sink_lag: Math.max(0, ...window.map((s) => s.sinkLag ?? 0)),
      max_stuck_s: seconds(maxStuck),
    };
  }
}
