/**
 * A fixed-memory histogram of millisecond durations for summary lines and benchmarks: 0.1 ms buckets up to
 * 100 ms, 1 ms buckets up to 10 s, then one overflow bucket; the maximum is kept exactly.
 *
 * @module
 */

const FINE_LIMIT_MS = 100;
const FINE_STEP_MS = 0.1;
const COARSE_LIMIT_MS = 10_000;
const FINE_BUCKETS = FINE_LIMIT_MS / FINE_STEP_MS;
const BUCKETS = FINE_BUCKETS + (COARSE_LIMIT_MS - FINE_LIMIT_MS) + 1;

/**
 * Records durations and answers percentiles.
 *
 * @example
 * ```ts
 * const lag = new Histogram();
 * lag.record(3.2);
 * lag.percentile(99); // 3.3 (the upper edge of its bucket)
 * ```
 */
export class Histogram {
  #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #max = 0;

  /** Number of values recorded. */
  get count(): number {
    return this.#count;
  }

  /** The largest value recorded (0 when empty). */
  get max(): number {
    return this.#max;
  }

  /** Records one duration in milliseconds (negative values count as 0). */
  record(ms: number): void {
    const value = ms > 0 ? ms : 0;
    let bucket: number;
    if (value < FINE_LIMIT_MS) bucket = Math.floor(value / FINE_STEP_MS);
    else if (value < COARSE_LIMIT_MS) bucket = FINE_BUCKETS + Math.floor(value - FINE_LIMIT_MS);
    else bucket = BUCKETS - 1;
    this.#counts[bucket]!++;
    this.#count++;
    if (value > this.#max) this.#max = value;
  }

  /** The value below which `p` percent of the recorded values fall (a bucket's upper edge; 0 when empty). */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.#count);
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.#counts[bucket]!;
      if (seen >= rank) return Math.min(upperEdge(bucket), this.#max);
    }
    return this.#max;
  }

  /** Forgets everything recorded. */
  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#max = 0;
  }
}

function upperEdge(bucket: number): number {
  if (bucket < FINE_BUCKETS) return Math.round((bucket + 1) * FINE_STEP_MS * 10) / 10;
  if (bucket < BUCKETS - 1) return FINE_LIMIT_MS + (bucket - FINE_BUCKETS) + 1;
  return Infinity;
}
