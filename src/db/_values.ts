/**
 * Value conversions the writer's modules share (private to src/db).
 *
 * @module
 */

/** Replaces NUL, which PostgreSQL text cannot hold (a row with one would fail its batch on every retry). */
export function cleanText(value: string): string {
  return value.includes("\0") ? value.replaceAll("\0", "\uFFFD") : value;
}

const MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/;

/**
 * Converts an RFC 3339 UTC timestamp (as `decodeCheck` accepts) to microseconds since 1970, rounding the fraction
 * as PostgreSQL does on input (to nearest, ties to even), so that JavaScript and the database order checks alike.
 * Throws `RangeError` for any other text.
 *
 * @example
 * ```ts
 * timestampMicros("1970-01-01T00:00:01.5Z"); // 1500000n
 * ```
 */
export function timestampMicros(timestamp: string): bigint {
  // What agents send (toISOString): milliseconds, which Date.parse reads exactly. Checked fully below otherwise.
  if (timestamp.length === 24 && MILLIS.test(timestamp)) {
    const millis = Date.parse(timestamp);
    if (!Number.isNaN(millis)) return BigInt(millis) * 1000n;
  }
  const match = TIMESTAMP.exec(timestamp);
  const millis = match ? Date.parse(`${match[1]}Z`) : NaN;
  if (!match || Number.isNaN(millis)) {
    throw new RangeError(`Cannot read timestamp: '${timestamp}' is not an RFC 3339 UTC timestamp`);
  }
  let fraction = 0;
  if (match[2] !== undefined) {
    const scaled = Number(`0.${match[2]}`) * 1_000_000;
    fraction = Math.round(scaled);
    if (scaled % 1 === 0.5 && fraction % 2 === 1) fraction--;
  }
  return BigInt(millis) * 1000n + BigInt(fraction);
}

/** RFC 3339 UTC text with microseconds for a time in microseconds since 1970. */
export function microsToTimestamp(micros: bigint): string {
  const millis = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const fraction = micros - millis * 1000n;
  return `${new Date(Number(millis)).toISOString().slice(0, 23)}${fraction.toString().padStart(3, "0")}Z`;
}
