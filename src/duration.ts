/**
 * Durations written as text, such as `"30s"`, `"1m30s"` or `"500ms"`: the form sites.toml and the
 * command-line flags use.
 *
 * @module
 */

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
const UNITS = Object.keys(UNIT_MS) as Unit[];
// "ms" before "m" and "s" so that the alternation never stops at the "m" of "ms".
const PART = /(\d+)(ms|h|m|s)/y;

/**
 * Parses a duration into milliseconds. A duration is one or more parts, each a non-negative integer and
 * a unit (`h`, `m`, `s` or `ms`), largest unit first and each unit at most once; no spaces, signs or
 * decimals.
 *
 * @example
 * ```ts
 * parseDuration("1m30s"); // 90000
 * parseDuration("500ms"); // 500
 * parseDuration("fast"); // throws SyntaxError
 * ```
 *
 * @param text The duration, e.g. `"30s"`.
 * @returns The duration in milliseconds (0 for `"0s"`).
 * @throws {SyntaxError} If `text` is not a duration.
 * @throws {RangeError} If the duration is too large to be counted exactly in milliseconds.
 */
export function parseDuration(text: string): number {
  let total = 0;
  let position = 0;
  let lastUnit = -1;
  while (position < text.length) {
    PART.lastIndex = position;
    const match = PART.exec(text);
    const unit = UNITS.indexOf(match?.[2] as Unit);
    if (match === null || unit <= lastUnit) break;
    total += Number(match[1]) * UNIT_MS[match[2] as Unit];
    lastUnit = unit;
    position = PART.lastIndex;
  }
  if (text.length === 0 || position < text.length) {
    throw new SyntaxError(
      `Cannot parse duration ${JSON.stringify(text)}: expected integers with units h, m, s or ms, ` +
        `largest first, such as "30s", "1m30s" or "500ms"`,
    );
  }
  if (!Number.isSafeInteger(total)) {
    throw new RangeError(`Cannot parse duration ${JSON.stringify(text)}: the value is too large`);
  }
  return total;
}

/**
 * Formats milliseconds as the shortest duration {@linkcode parseDuration} reads back to the same value.
 *
 * @example
 * ```ts
 * formatDuration(90_000); // "1m30s"
 * formatDuration(0); // "0s"
 * ```
 *
 * @param ms A non-negative integer number of milliseconds.
 * @returns The duration as text, e.g. `"1m30s"`.
 * @throws {RangeError} If `ms` is negative or not a safe integer.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError(
      `Cannot format duration: 'ms' must be a non-negative integer: current value is ${ms}`,
    );
  }
  if (ms === 0) return "0s";
  let rest = ms;
  let text = "";
  for (const unit of UNITS) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * UNIT_MS[unit];
  }
  return text;
}
