/**
 * How the config readers report a problem: the callbacks that throw with a key path, and a TOML value shown
 * the way error messages show it. Private to `config.ts` and its `_config_*.ts` readers.
 *
 * @module
 */

/** Throws a ConfigError for a key path (relative to the table being read) with a detail. */
export type Fail = (path: readonly string[], detail: string) => never;
/** Fails one key with `key '…' must be <expected>: got <got>`; `got` defaults to the value shown. */
export type Must = (expected: string, got?: string, path?: string[]) => never;
/** A TOML table as smol-toml returns it. */
export type Table = Record<string, unknown>;

/** Whether a TOML value is a table (not a list, and not a date-time, which is an object too). */
export function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** A value as an error message shows it: strings quoted, tables and lists by their kind. */
export function show(value: unknown): string {
  if (typeof value === "string") {
    // Not cut inside a surrogate pair: the half would print as U+FFFD.
    const end = /[\uD800-\uDBFF]/.test(value[79] ?? "") ? 79 : 80;
    return JSON.stringify(value.length > 80 ? `${value.slice(0, end)}…` : value);
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  return kind(value);
}

/** The kind of a TOML value, for messages that must not quote it (e.g. header values, which may be secret). */
export function kind(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return "a date-time";
  if (typeof value === "object" && value !== null) return "a table";
  return typeof value === "number" ? "a number" : `a ${typeof value}`;
}
