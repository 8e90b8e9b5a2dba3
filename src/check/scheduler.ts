/**
 * Runs every site on its own fixed-rate interval: the next run is due at the previous due time plus the
 * interval (no drift), sites are spread over their interval by a hash of their name (so restarts and many
 * agents do not fire every site at once), a site still running is not started twice (the skip is counted),
 * and a global limit bounds how many runs are in flight.
 *
 * One timer serves all sites: due times live in a binary min-heap, so 30,000 sites cost one timer, not 30,000.
 *
 * @module
 */
import { Histogram } from "../histogram.ts";
import { Outbox } from "./outbox.ts";

/** What the scheduler runs for a site that is due. It must not reject; a rejection is a bug and is logged. */
export type RunSite<S> = (site: S, scheduledAt: number) => Promise<void>;

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  /** The most runs in flight at once. */
  readonly concurrency: number;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
  /** Called when a run rejects (a bug in the runner). */
  readonly onRunError?: (error: unknown) => void;
}

/** What the scheduler has done since the last {@linkcode Scheduler.takeStats}. */
export interface SchedulerStats {
  /** Runs started. */
  readonly started: number;
  /** Due runs not started because the site's previous run was still going (or waiting for a slot). */
  readonly skipped: number;
  /** Time from due to start, in milliseconds. */
  readonly lag: Histogram;
}

interface Entry<S> {
  readonly site: S;
  readonly intervalMs: number;
  due: number;
  busy: boolean;
}

/**
 * The offset of a site within its interval, from a 32-bit FNV-1a hash of its name: deterministic across
 * restarts and agents.
 *
 * @example
 * ```ts
 * phaseOffset("api", 60_000); // the same number on every run, 0 <= n < 60000
 * ```
 */
export function phaseOffset(name: string, intervalMs: number): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(name)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % intervalMs;
}

/** The first due time at or after `now` on the grid `k * intervalMs + offset` (epoch-aligned). */
export function firstDue(now: number, intervalMs: number, offset: number): number {
  const due = Math.floor((now - offset) / intervalMs) * intervalMs + offset;
  return due >= now ? due : due + intervalMs;
}

/**
 * The next due time after a run due at `due`: `due + interval`, unless the scheduler fell behind by whole
 * intervals, in which case the missed slots are skipped (and returned as `missed`) rather than run in a burst.
 */
export function nextDue(due: number, intervalMs: number, now: number): { next: number; missed: number } {
  let next = due + intervalMs;
  let missed = 0;
  if (next <= now - intervalMs) {
    missed = Math.floor((now - next) / intervalMs);
    next += missed * intervalMs;
  }
  return { next, missed };
}

/**
 * The scheduler.
 *
 * @example
 * ```ts
 * import type { Site } from "./site.ts";
 * declare const sites: Site[];
 * declare function runProbe(site: Site, scheduledAt: number): Promise<void>;
 * const scheduler = new Scheduler(sites, (s) => s.intervalMs, (s) => s.name, runProbe, { concurrency: 100 });
 * scheduler.start();
 * // ...
 * await scheduler.stop();
 * ```
 */
export class Scheduler<S> {
  readonly #entries: Entry<S>[];
  readonly #heap: Entry<S>[] = [];
  // Runs due while every slot is taken, first come first served. Each site waits at most once (it is busy
  // meanwhile), so a ring of one place per site never overflows, and taking from its front costs O(1).
  readonly #waiting: Outbox<{ entry: Entry<S>; due: number }>;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #now: () => number;
  readonly #concurrency: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #running = false;
  #started = 0;
  #skipped = 0;
  #skippedTotal = 0;
  #lag = new Histogram();

  constructor(
    sites: readonly S[],
    intervalOf: (site: S) => number,
    nameOf: (site: S) => string,
    private readonly run: RunSite<S>,
    private readonly options: SchedulerOptions,
  ) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(
        `Cannot schedule as 'concurrency' must be a positive integer: current value is ${options.concurrency}`,
      );
    }
    this.#now = options.now ?? Date.now;
    this.#concurrency = options.concurrency;
    this.#waiting = new Outbox(Math.max(1, sites.length));
    const now = this.#now();
    this.#entries = sites.map((site) => {
      const intervalMs = intervalOf(site);
      return {
        site,
        intervalMs,
        due: firstDue(now, intervalMs, phaseOffset(nameOf(site), intervalMs)),
        busy: false,
      };
    });
  }

  /** Due runs skipped since the start (see {@linkcode SchedulerStats.skipped}). */
  get skippedTotal(): number {
    return this.#skippedTotal + this.#skipped;
  }

  /** Runs in flight now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Starts scheduling. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const entry of this.#entries) this.#push(entry);
    this.#arm();
  }

  /** Stops starting runs and waits for those in flight. Bound the wait with a deadline of your own. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting.take(this.#waiting.size);
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Returns the counters and the lag histogram collected since the last call, and starts afresh. */
  takeStats(): SchedulerStats {
    const stats = { started: this.#started, skipped: this.#skipped, lag: this.#lag };
    this.#skippedTotal += this.#skipped;
    this.#started = 0;
    this.#skipped = 0;
    this.#lag = new Histogram();
    return stats;
  }

  #arm(): void {
    const top = this.#heap[0];
    if (!this.#running || top === undefined) return;
    if (this.#timer !== undefined && this.#timerAt <= top.due) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = top.due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#fire();
    }, Math.max(0, top.due - this.#now()));
  }

  #fire(): void {
    const now = this.#now();
    while (this.#running && this.#heap.length > 0 && this.#heap[0]!.due <= now) {
      const entry = this.#pop();
      const due = entry.due;
      if (entry.busy) this.#skipped++;
      else if (this.#inFlight.size < this.#concurrency) this.#launch(entry, due);
      else {
        entry.busy = true;
        this.#waiting.push({ entry, due });
      }
      const { next, missed } = nextDue(due, entry.intervalMs, now);
      this.#skipped += missed;
      entry.due = next;
      this.#push(entry);
    }
    this.#arm();
  }

  #launch(entry: Entry<S>, due: number): void {
    entry.busy = true;
    this.#started++;
    this.#lag.record(this.#now() - due);
    const running: Promise<void> = this.run(entry.site, due)
      .catch((error) => this.options.onRunError?.(error))
      .finally(() => {
        entry.busy = false;
        this.#inFlight.delete(running);
        const next = this.#running ? this.#waiting.shift() : undefined;
        if (next) this.#launch(next.entry, next.due);
      });
    this.#inFlight.add(running);
  }

  #push(entry: Entry<S>): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.due <= entry.due) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): Entry<S> {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right]!.due < heap[left]!.due ? right : left;
        if (heap[child]!.due >= last.due) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
