/**
 * True consumer lag and stall detection for `monitor sink`. Lag per partition is the partition's high
 * watermark, read from the broker on a timer, minus the next offset stored in PostgreSQL (which the consumer
 * knows: it read it at assignment and wrote it with every batch). Lag computed from the last batch received
 * would say 0 while the consumer receives nothing at all, which is exactly when it matters.
 *
 * A partition is stalled when it has lag and nothing was stored on it for the stall timeout. The clock
 * starts when the partition was last seen without lag, when something was last stored on it, or when it
 * was assigned to this member, whichever is latest.
 *
 * @module
 */

/** A partition's offsets as the broker reports them. */
export interface Watermark {
  readonly partition: number;
  /** The offset the next message will get. */
  readonly high: bigint;
  /** The first offset still in the log (where a consumer without stored offsets starts). */
  readonly low: bigint;
}

/** A partition with lag and no progress for at least the stall timeout. */
export interface Stall {
  readonly partition: number;
  readonly lag: number;
  /** Milliseconds since the stall clock started. */
  readonly forMs: number;
}

interface PartitionState {
  stored: bigint | null;
  /** The last offsets known to hold nothing to store (transaction markers, aborted records), [from, to). */
  empty: { from: bigint; to: bigint } | null;
  high: bigint | null;
  low: bigint;
  /** When the stall clock started (ms since the epoch). */
  since: number;
}

/**
 * Lag and stalls of the partitions assigned to this member. Pure: every method takes the time.
 *
 * @example
 * ```ts
 * const now = Date.now();
 * const tracker = new LagTracker(30_000);
 * tracker.assign([0, 1], now);
 * tracker.stored(0, 120n, now);
 * tracker.watermarks([{ partition: 0, high: 150n, low: 0n }, { partition: 1, high: 0n, low: 0n }], now);
 * tracker.lag(); // Map { 0 => 30, 1 => 0 }
 * tracker.stalls(now + 31_000); // [{ partition: 0, lag: 30, forMs: 31000 }]
 * ```
 */
export class LagTracker {
  readonly #partitions = new Map<number, PartitionState>();
  #lastRecovery = -Infinity;

  constructor(readonly stallTimeoutMs: number) {
    if (!Number.isFinite(stallTimeoutMs) || stallTimeoutMs <= 0) {
      throw new RangeError(
        `Cannot track stalls as 'stallTimeoutMs' must be a positive number: current value is ${stallTimeoutMs}`,
      );
    }
  }

  /**
   * Sets the partitions assigned to this member. A partition assigned before keeps its state (a rejoin
   * that gets the same partitions back has not made progress); a new one starts its clock now.
   */
  assign(partitions: readonly number[], now: number): void {
    const assigned = new Set(partitions);
    for (const partition of this.#partitions.keys()) {
      if (!assigned.has(partition)) this.#partitions.delete(partition);
    }
    for (const partition of assigned) {
      if (!this.#partitions.has(partition)) {
        this.#partitions.set(partition, { stored: null, empty: null, high: null, low: 0n, since: now });
      }
    }
  }

  /** The partitions assigned, in order. */
  get assigned(): number[] {
    return [...this.#partitions.keys()].sort((a, b) => a - b);
  }

  /** Records the next offset stored in PostgreSQL for a partition; a higher one than before is progress. */
  stored(partition: number, nextOffset: bigint, now: number): void {
    const state = this.#partitions.get(partition);
    if (state === undefined) return;
    if (nextOffset > (state.stored ?? state.low)) state.since = now;
    if (state.stored === null || nextOffset > state.stored) state.stored = nextOffset;
    catchUp(state, now);
  }

  /**
   * Records that offsets `from` to `to` (exclusive) of a partition hold nothing to store (a transaction's
   * marker, aborted records): once the stored offset reaches them, they count as stored. Returns the
   * offset the partition then counts as stored, if that moved.
   */
  passedOver(partition: number, from: bigint, to: bigint, now: number): bigint | null {
    const state = this.#partitions.get(partition);
    if (state === undefined || to <= from) return null;
    state.empty = state.empty !== null && state.empty.to === from
      ? { from: state.empty.from, to }
      : { from, to };
    return catchUp(state, now);
  }

  /**
   * Where the offsets that hold nothing to store and end at `offset` begin, or null: a batch fetched from
   * `offset` may vouch for its range from there, as nothing before it is left to store.
   */
  emptyBefore(partition: number, offset: bigint): bigint | null {
    const empty = this.#partitions.get(partition)?.empty;
    return empty !== undefined && empty !== null && empty.to === offset ? empty.from : null;
  }

  /** Records the broker's watermarks; a partition without lag restarts its clock. */
  watermarks(marks: readonly Watermark[], now: number): void {
    for (const mark of marks) {
      const state = this.#partitions.get(mark.partition);
      if (state === undefined) continue;
      state.high = mark.high;
      state.low = mark.low;
      if (lagOf(state) === 0) state.since = now;
    }
  }

  /** A partition's log start offset as last read from the broker (0 until read): offsets below it are gone. */
  logStart(partition: number): bigint {
    return this.#partitions.get(partition)?.low ?? 0n;
  }

  /** Lag per assigned partition (0 until its high watermark is known). */
  lag(): Map<number, number> {
    return new Map(this.assigned.map((partition) => [partition, lagOf(this.#partitions.get(partition)!)]));
  }

  /** The sum of {@linkcode lag}. */
  totalLag(): number {
    let total = 0;
    for (const state of this.#partitions.values()) total += lagOf(state);
    return total;
  }

  /** The stalled partitions, in order. */
  stalls(now: number): Stall[] {
    const stalls: Stall[] = [];
    for (const partition of this.assigned) {
      const state = this.#partitions.get(partition)!;
      const lag = lagOf(state);
      const forMs = now - state.since;
      if (lag > 0 && forMs >= this.stallTimeoutMs) stalls.push({ partition, lag, forMs });
    }
    return stalls;
  }

  /**
   * The stalls to recover from now: none when there are none, or when the last recovery was less than a
   * stall timeout ago (a fresh consumer needs that long to show whether it helped).
   */
  recoveryDue(now: number): Stall[] {
    const stalls = this.stalls(now);
    if (stalls.length === 0 || now - this.#lastRecovery < this.stallTimeoutMs) return [];
    this.#lastRecovery = now;
    return stalls;
  }

  /** Restarts every clock, e.g. while the database, not Kafka, is what holds the sink up. */
  pause(now: number): void {
    for (const state of this.#partitions.values()) state.since = now;
  }

  /** Why the sink is not healthy because of a stall, or null. */
  healthReason(now: number): string | null {
    const stalls = this.stalls(now);
    if (stalls.length === 0) return null;
    const parts = stalls.map((stall) => `partition ${stall.partition} (lag ${stall.lag})`);
    const seconds = Math.round(Math.min(...stalls.map((stall) => stall.forMs)) / 1_000);
    return `stalled: nothing stored for ${seconds}s on ${parts.join(", ")}`;
  }
}

/** Moves the stored offset past the empty offsets it has reached; returns it when it moved. */
function catchUp(state: PartitionState, now: number): bigint | null {
  const empty = state.empty;
  if (empty === null || state.stored === null || state.stored < empty.from || state.stored >= empty.to) {
    return null;
  }
  state.stored = empty.to;
  state.since = now;
  return empty.to;
}

function lagOf(state: PartitionState): number {
  if (state.high === null) return 0;
  const from = state.stored ?? state.low;
  return from >= state.high ? 0 : Number(state.high - from);
}
