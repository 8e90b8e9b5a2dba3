/**
 * The strict check of the RFC 3339 UTC timestamps a message carries. It runs three times for every message the
 * sink reads, so the usual form is read digit by digit, without a regex or `Date.parse`.
 *
 * @module
 */

// RFC 3339 in UTC ("Z"), with optional fractional seconds.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const MIN_TIME = Date.UTC(1970, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59);
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * What is wrong with a timestamp: `"format"` for a text that is not an RFC 3339 UTC time of a real date,
 * `"range"` for one outside 1970 to 9999, `null` for none.
 *
 * @example
 * ```ts
 * utcTimestampProblem("2026-11-30T09:05:01.234Z"); // null
 * utcTimestampProblem("2026-02-31T00:00:00Z"); // "format"
 * utcTimestampProblem("1969-12-31T23:59:59Z"); // "range"
 * ```
 */
export function utcTimestampProblem(text: string): "format" | "range" | null {
  // What agents write (toISOString, milliseconds).
  if (text.length === 24 && isMillisTimestamp(text)) return null;
  const time = Date.parse(text);
  // Date.parse rolls an impossible date (February 31st) over into the next month: compare it back.
  if (!TIMESTAMP.test(text) || Number.isNaN(time) || !sameSecond(time, text)) return "format";
  if (time < MIN_TIME || time > MAX_TIME) return "range";
  return null;
}

// Compares fields rather than formatting the date back.
function sameSecond(time: number, text: string): boolean {
  const date = new Date(time);
  return date.getUTCSeconds() === twoDigits(text, 17) && date.getUTCMinutes() === twoDigits(text, 14) &&
    date.getUTCHours() === twoDigits(text, 11) && date.getUTCDate() === twoDigits(text, 8) &&
    date.getUTCMonth() + 1 === twoDigits(text, 5);
}

/** Whether a 24-character text is a valid time of 1970 to 9998 in the form "YYYY-MM-DDTHH:MM:SS.mmmZ" (9999, whose
 * last second is out of range, is left to the full check). Straight-line code: it runs three times a message. */
function isMillisTimestamp(text: string): boolean {
  if (
    text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 ||
    text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58 || text.charCodeAt(19) !== 46 ||
    text.charCodeAt(23) !== 90
  ) return false;
  const year = fourDigits(text, 0);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  const millis = twoDigits(text, 20) * 10 + text.charCodeAt(22) - 48;
  // A non-digit makes its field NaN or out of range; each field is checked against its range below.
  if (!(year >= 1970 && year < 9999 && month >= 1 && month <= 12 && day >= 1)) return false;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0) && hour >= 0 && hour <= 23 && minute >= 0 &&
    minute <= 59 && second >= 0 && second <= 59 && millis >= 0 && millis <= 999 && allDigits(text);
}

function twoDigits(text: string, at: number): number {
  return (text.charCodeAt(at) - 48) * 10 + text.charCodeAt(at + 1) - 48;
}

function fourDigits(text: string, at: number): number {
  return twoDigits(text, at) * 100 + twoDigits(text, at + 2);
}

// Every position but the separators' holds a digit (a field's range check alone lets "1:" through as 10 + 10).
function allDigits(text: string): boolean {
  for (let at = 0; at < 23; at++) {
    if (at === 4 || at === 7 || at === 10 || at === 13 || at === 16 || at === 19) continue;
    const code = text.charCodeAt(at);
    if (code < 48 || code > 57) return false;
  }
  return true;
}
