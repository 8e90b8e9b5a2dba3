/**
 * How the read side writes numbers and times for people: uptime percentages that never round up to 100 %,
 * durations in the largest two units, UTC timestamps to the minute.
 *
 * @module
 */
import { clip } from "../clip.ts";
import { MAX_ERROR_MESSAGE_LENGTH } from "../message.ts";

/**
 * The bidi embeddings, overrides, isolates and marks, as the inside of a regular expression's character class:
 * in a stored name or message they make text show in another order than it is, so neither the terminal view
 * nor a page's title (text alone, where markup cannot isolate a name) passes them on.
 */
export const BIDI_CONTROLS = "\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069";

/**
 * A check's error as the pages and the terminal show it: its kind and its message, cut to
 * {@linkcode MAX_ERROR_MESSAGE_LENGTH} characters, the most the agent publishes (another producer's may hold
 * 64 KiB, which a page of 20 failures would repeat; the JSON API gives it whole).
 *
 * @example
 * ```ts
 * errorText("http", "HTTP 503"); // "http: HTTP 503"
 * ```
 */
export function errorText(kind: string, message: string | null): string {
  return `${kind}: ${clip(message ?? "", MAX_ERROR_MESSAGE_LENGTH)}`;
}

/**
 * An uptime percentage with two decimals, truncated (99.999 % is "99.99%", never "100.00%": only a
 * period without a failed check shows 100 %); "–" when there is no data.
 *
 * @example
 * ```ts
 * formatPercent(99.996); // "99.99%"
 * formatPercent(100); // "100%"
 * formatPercent(null); // "–"
 * ```
 */
export function formatPercent(percent: number | null): string {
  if (percent === null) return "–";
  if (percent >= 100) return "100%";
  return `${(Math.floor(percent * 100) / 100).toFixed(2)}%`;
}

/**
 * A response time in milliseconds, to one decimal under 100 ms and whole above; "–" when unknown.
 *
 * @example
 * ```ts
 * formatMs(12.25); // "12.3 ms"
 * formatMs(1234.5); // "1,235 ms"
 * ```
 */
export function formatMs(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms).toLocaleString("en-US")} ms`;
}

const UNITS: readonly [string, number][] = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["min", 60_000],
  ["s", 1_000],
];

/**
 * A duration in its largest two units, rounded down: "3 d 4 h", "2 h 5 min", "45 s"; under a second "0 s".
 *
 * @example
 * ```ts
 * formatDurationHuman(7_500_000); // "2 h 5 min"
 * formatDurationHuman(86_400_000); // "1 d"
 * ```
 */
export function formatDurationHuman(ms: number): string {
  let rest = Math.max(0, Math.floor(ms));
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    if (parts.length === 2) break;
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 || parts.length > 0) parts.push(`${count} ${unit}`);
  }
  const shown = parts.filter((part, i) => i === 0 || !part.startsWith("0 "));
  return shown.length === 0 ? "0 s" : shown.join(" ");
}

/**
 * A UTC timestamp to the minute, as pages show it before a script (if any) localizes it.
 *
 * @example
 * ```ts
 * formatUtc(new Date("2026-11-30T06:05:48Z")); // "2026-11-30 06:05 UTC"
 * ```
 */
export function formatUtc(time: Date): string {
  return `${time.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}
