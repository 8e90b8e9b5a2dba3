/**
 * Runs every site on its own fixed-rate interval: the next run is due at the previous due time plus the
 * interval (no drift), sites are spread over their interval by a hash of their name (so restarts and many
 * agents do not fire every site at once), a site still running is not started twice: a run that comes due
 * meanwhile starts as soon as it ends (late, not lost: with a timeout equal to the interval, a site that times
 * out would otherwise be probed every other slot), and a second one meanwhile is skipped and counted. A global
 * limit bounds how many runs are in flight.
 *
 * One timer serves all sites: due times live in a binary min-heap, so 30,000 sites cost one timer, not 30,000.
 *
 * @module
 */
import { Histogram } from "../histogram.ts";
import { DueHeap } from "./_due_heap.ts";

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

// A site's state (Scheduler's #state).
const IDLE = 0;
const WAITING = 1;
const RUNNING = 2;

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
  readonly #sites: readonly S[];
  readonly #intervals: Float64Array;
  // The first due time of each site, until start() puts them in the heap.
  readonly #firstDues: Float64Array;
  // Each site's IDLE, WAITING (for a slot) or RUNNING.
  readonly #state: Uint8Array;
  // The due time of the run that came due while the site was running (NaN: none), started when it ends.
  readonly #dueAfterRun: Float64Array;
  readonly #heap: DueHeap;
  // Runs due while every slot is taken, first come first served, as a ring of (site, due). Each site waits
  // at most once (it is WAITING or RUNNING meanwhile), so one place per site never overflows.
  readonly #waitingSite: Int32Array;
  readonly #waitingDue: Float64Array;
  #waitingHead = 0;
  #waitingSize = 0;
  #inFlight = 0;
  #idle: (() => void)[] = [];
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
    const count = sites.length;
    this.#sites = [...sites];
    this.#intervals = new Float64Array(count);
    this.#firstDues = new Float64Array(count);
    this.#state = new Uint8Array(count);
    this.#dueAfterRun = new Float64Array(count).fill(NaN);
    this.#heap = new DueHeap(count);
    this.#waitingSite = new Int32Array(Math.max(1, count));
    this.#waitingDue = new Float64Array(Math.max(1, count));
    const now = this.#now();
    for (let i = 0; i < count; i++) {
      const site = sites[i]!;
      const intervalMs = intervalOf(site);
      this.#intervals[i] = intervalMs;
      this.#firstDues[i] = firstDue(now, intervalMs, phaseOffset(nameOf(site), intervalMs));
    }
  }

  /** Due runs skipped since the start (see {@linkcode SchedulerStats.skipped}). */
  get skippedTotal(): number {
    return this.#skippedTotal + this.#skipped;
  }

  /** Runs in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Starts scheduling. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (this.#heap.size === 0) {
      for (let i = 0; i < this.#sites.length; i++) this.#heap.push(this.#firstDues[i]!, i);
    }
    this.#arm();
  }

  /** Stops starting runs and waits for those in flight. Bound the wait with a deadline of your own. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    while (this.#waitingSize > 0) this.#shiftWaiting();
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
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
    const due = this.#heap.topDue;
    if (!this.#running || due === Infinity) return;
    if (this.#timer !== undefined && this.#timerAt <= due) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#fire();
    }, Math.max(0, due - this.#now()));
  }

  #fire(): void {
    const now = this.#now();
    const heap = this.#heap;
    while (this.#running && heap.size > 0 && heap.topDue <= now) {
      const site = heap.topId;
      const due = heap.topDue;
      if (this.#state[site] === RUNNING) {
        if (!Number.isNaN(this.#dueAfterRun[site]!)) this.#skipped++;
        this.#dueAfterRun[site] = due;
      } else if (this.#state[site] === WAITING) this.#skipped++;
      else if (this.#inFlight < this.#concurrency) this.#launch(site, due);
      else {
        this.#state[site] = WAITING;
        this.#pushWaiting(site, due);
      }
      const { next, missed } = nextDue(due, this.#intervals[site]!, now);
      this.#skipped += missed;
      heap.replaceTop(next, site);
    }
    this.#arm();
  }

  #launch(site: number, due: number): void {
    this.#state[site] = RUNNING;
    this.#inFlight++;
    this.#started++;
    this.#lag.record(this.#now() - due);
    this.#runOne(site, due);
  }

  async #runOne(site: number, due: number): Promise<void> {
    try {
      await this.run(this.#sites[site]!, due);
    } catch (error) {
      this.options.onRunError?.(error);
    }
    this.#state[site] = IDLE;
    this.#inFlight--;
    const dueMeanwhile = this.#dueAfterRun[site]!;
    this.#dueAfterRun[site] = NaN;
    if (this.#running && !Number.isNaN(dueMeanwhile)) {
      // Behind the runs already waiting for a slot, if any (the slot just freed goes to the first of them).
      this.#state[site] = WAITING;
      this.#pushWaiting(site, dueMeanwhile);
    }
    if (this.#running && this.#waitingSize > 0) {
      const next = this.#waitingHead;
      this.#shiftWaiting();
      this.#launch(this.#waitingSite[next]!, this.#waitingDue[next]!);
    } else if (this.#inFlight === 0 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  #pushWaiting(site: number, due: number): void {
    const at = (this.#waitingHead + this.#waitingSize) % this.#waitingSite.length;
    this.#waitingSite[at] = site;
    this.#waitingDue[at] = due;
    this.#waitingSize++;
  }

  /** Drops the front of the waiting ring; the caller reads it first. A dropped site is idle again. */
  #shiftWaiting(): void {
    const head = this.#waitingHead;
    if (!this.#running) this.#state[this.#waitingSite[head]!] = IDLE;
    this.#waitingHead = (head + 1) % this.#waitingSite.length;
    this.#waitingSize--;
  }
}
