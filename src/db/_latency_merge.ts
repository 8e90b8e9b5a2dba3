/**
 * Merging the rollups' latency histograms in the program rather than in SQL: `latency_merge()` is a PL/pgSQL
 * loop (about 40 µs a row, measured: 2.3 s for the 24 hourly rows of 1,000 sites), while parsing the
 * arrays' text here takes a few microseconds. Percentiles follow `latency_percentile()` exactly (the check of
 * rank floor(p × (n − 1)), reported as its bucket's midpoint). Private to src/db.
 *
 * @module
 */
import { LATENCY_BUCKETS, latencyMidpoint } from "./latency.ts";

/** A merged histogram: counts per bucket 0..159. */
export type Histogram = Float64Array;

/** An empty histogram. */
export function emptyHistogram(): Histogram {
  return new Float64Array(LATENCY_BUCKETS);
}

// Elements may be NULL: the writer adds into one subscript in place (`latency[b] = coalesce(latency[b], 0) + n`),
// and PostgreSQL fills the gap between the old bounds and b with NULLs. A NULL counts as 0, as in SQL.
const LITERAL =
  /^\[(\d+):(\d+)\]=\{((?:\d+|NULL)(?:,(?:\d+|NULL))*)?\}$|^\{((?:\d+|NULL)(?:,(?:\d+|NULL))*)?\}$/;

/**
 * Adds a stored histogram, as PostgreSQL prints it (`[47:49]={3,0,1}`, or `{…}` when it starts at bucket 1),
 * to `into`; a NULL element counts as 0. Throws `SyntaxError` for other text.
 */
export function addHistogram(into: Histogram, text: string): void {
  const match = LITERAL.exec(text);
  if (match === null) throw new SyntaxError(`Cannot read latency histogram: got '${text.slice(0, 40)}'`);
  const low = match[1] === undefined ? 1 : Number(match[1]);
  const values = (match[3] ?? match[4] ?? "").split(",");
  for (let i = 0; i < values.length; i++) {
    const bucket = low + i;
    const value = values[i] === "NULL" ? 0 : Number(values[i]);
    if (bucket >= 0 && bucket < LATENCY_BUCKETS) into[bucket] = into[bucket]! + value;
  }
}

/** Merges the histograms' texts (nulls skipped). */
export function mergeHistograms(texts: readonly (string | null)[] | null): Histogram {
  const histogram = emptyHistogram();
  for (const text of texts ?? []) if (text !== null) addHistogram(histogram, text);
  return histogram;
}

/** The p-quantile (0..1) of a merged histogram as `latency_percentile()` computes it; null when empty. */
export function histogramPercentile(histogram: Histogram, p: number): number | null {
  let total = 0;
  for (const count of histogram) total += count;
  if (total === 0) return null;
  const rank = Math.floor(p * (total - 1));
  let seen = 0;
  for (let bucket = 0; bucket < histogram.length; bucket++) {
    seen += histogram[bucket]!;
    if (seen > rank) return latencyMidpoint(bucket);
  }
  return null;
}
