/**
 * The latency histogram of the rollups: fixed log-scale buckets of `duration_ms`, the same as the database's
 * `latency_thresholds()` and `latency_bucket()` (sql/0003_history.sql). Bucket 0 holds durations under 1 ms,
 * bucket i (1..158) `[THRESHOLDS[i-1], THRESHOLDS[i])`, a factor of about 1.08 wide, and bucket 159 everything
 * from 190,965 ms. A percentile read as a bucket's geometric midpoint is within 3.93 % (sqrt(1.08) - 1) of a
 * value in that bucket.
 *
 * @module
 */

/** Growth factor between two thresholds. */
export const LATENCY_GROWTH = 1.08;
/** Number of buckets (0..159). */
export const LATENCY_BUCKETS = 160;

/** The lower bounds of buckets 1..159 in milliseconds: 1.08^k rounded to 6 significant digits, k = 0..158. Both
 * this program and PostgreSQL parse these decimal texts to the same doubles, so both put a duration in the same
 * bucket. */
export const LATENCY_THRESHOLDS: readonly number[] = Object.freeze(
  Array.from({ length: LATENCY_BUCKETS - 1 }, (_, k) => Number((LATENCY_GROWTH ** k).toPrecision(6))),
);

/**
 * The bucket of a duration as the database stores it (a `real`, so the value is first rounded to single
 * precision), as PostgreSQL's `width_bucket(duration_ms::float8, latency_thresholds())` computes it.
 *
 * @example
 * ```ts
 * latencyBucket(0.4); // 0
 * latencyBucket(40.25); // 49
 * ```
 */
export function latencyBucket(durationMs: number): number {
  const value = Math.fround(durationMs);
  // Binary search: the number of thresholds <= value.
  let low = 0;
  let high = LATENCY_THRESHOLDS.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (LATENCY_THRESHOLDS[middle]! <= value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The value a percentile in `bucket` is reported as: the geometric midpoint of its bounds rounded to 0.1 ms;
 * 0.5 ms for bucket 0 and the lower bound for the open top bucket (as `latency_percentile()` in SQL).
 *
 * @example
 * ```ts
 * latencyMidpoint(49); // 41.8
 * ```
 */
export function latencyMidpoint(bucket: number): number {
  if (bucket <= 0) return 0.5;
  if (bucket >= LATENCY_BUCKETS - 1) return LATENCY_THRESHOLDS[LATENCY_THRESHOLDS.length - 1]!;
  return Math.round(Math.sqrt(LATENCY_THRESHOLDS[bucket - 1]! * LATENCY_THRESHOLDS[bucket]!) * 10) / 10;
}

/**
 * A histogram as PostgreSQL's int4[] text with the bucket numbers as subscripts, trimmed to the first and last
 * non-empty bucket (`[47:49]={3,0,1}`), or null for an empty one. `counts` maps bucket to count.
 *
 * @example
 * ```ts
 * histogramLiteral(new Map([[47, 3], [49, 1]])); // "[47:49]={3,0,1}"
 * ```
 */
export function histogramLiteral(counts: ReadonlyMap<number, number>): string | null {
  if (counts.size === 0) return null;
  let low = Infinity;
  let high = -Infinity;
  for (const bucket of counts.keys()) {
    if (bucket < low) low = bucket;
    if (bucket > high) high = bucket;
  }
  const values = new Array<number>(high - low + 1);
  for (let bucket = low; bucket <= high; bucket++) values[bucket - low] = counts.get(bucket) ?? 0;
  return `[${low}:${high}]={${values.join(",")}}`;
}
