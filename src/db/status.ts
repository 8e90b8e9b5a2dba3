/**
 * The latest-status arithmetic of `site_status`, kept apart from SQL so its rules are plain to read and test:
 * which checks are newer than the stored row, and how a run of them moves `state_since` and
 * `consecutive_failures`.
 *
 * @module
 */

/** Where a check or a stored status stands in time: started_at in microseconds (as PostgreSQL keeps it), then
 * the check id (lower-case UUID text, which sorts as PostgreSQL sorts uuid) to break ties. */
export interface TimeKey {
  readonly micros: bigint;
  readonly checkId: string;
}

/** The part of a stored `site_status` row the arithmetic needs. */
export interface StoredStatus extends TimeKey {
  readonly up: boolean;
  readonly consecutiveFailures: number;
}

/** One check of the site, as far as the status is concerned. */
export interface StatusInput extends TimeKey {
  readonly startedAt: string;
  readonly up: boolean;
}

/** The new status of a site: its latest check, and how long the current state has lasted. */
export interface StatusOutcome<T extends StatusInput> {
  readonly latest: T;
  /** started_at of the first check of the current run, or null to keep the stored `state_since`. */
  readonly stateSince: string | null;
  readonly consecutiveFailures: number;
}

/** Orders two time keys: negative, zero or positive. */
export function compareTimeKeys(a: TimeKey, b: TimeKey): number {
  if (a.micros !== b.micros) return a.micros < b.micros ? -1 : 1;
  return a.checkId < b.checkId ? -1 : a.checkId > b.checkId ? 1 : 0;
}

/**
 * Folds a site's checks into its stored status: checks not newer than the stored latest are ignored (the status
 * never goes back in time); the rest are applied in time order. Returns null when no check is newer.
 *
 * @example
 * ```ts
 * const outcome = advanceStatus(stored, checksOfOneSite);
 * // { latest, stateSince: "2026-11-23T10:00:00Z", consecutiveFailures: 2 }
 * ```
 */
export function advanceStatus<T extends StatusInput>(
  stored: StoredStatus | null,
  checks: readonly T[],
): StatusOutcome<T> | null {
  const newer = checks.filter((check) => stored === null || compareTimeKeys(check, stored) > 0)
    .sort(compareTimeKeys);
  let latest: T | null = null;
  let up = stored?.up ?? null;
  let stateSince: string | null = null;
  let failures = stored?.consecutiveFailures ?? 0;
  for (const check of newer) {
    if (check.up !== up) {
      up = check.up;
      stateSince = check.startedAt;
      failures = 0;
    }
    if (!check.up) failures++;
    latest = check;
  }
  return latest === null ? null : { latest, stateSince, consecutiveFailures: failures };
}

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
