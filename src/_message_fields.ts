/**
 * The strict reading of a decoded JSON message, field by field: each reader checks its field's type, range and
 * text, and throws a `TypeError` or `RangeError` whose message names the field (it goes to the dead-letter
 * table). Used by `decodeCheck()` in message.ts.
 *
 * @module
 */

import { isCheckId } from "./check_id.ts";
import { utcTimestampProblem } from "./_utc_timestamp.ts";

/** A JSON object as `JSON.parse` returns it. */
export type JsonObject = Record<string, unknown>;

/** Whether a parsed JSON value is an object (not null, not an array). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A short description of a value for an error message: a string quoted and cut at 40 characters. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `'${value.length > 40 ? value.slice(0, 40) + "…" : value}'`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/**
 * Strings that repeat from message to message, each kept once: a site's name, URL, agent and region recur in
 * every check of the site, and so do its pattern, its certificate's expiry and most error messages. A decoded
 * check holds the kept string instead of its own copy, which is about a third of what a check queued in the sink
 * costs (a few hundred bytes each, tens of thousands queued), and a string seen before skips its field's check.
 * Bounded by the characters kept (so that long, never-repeated values cannot fill memory): cleared when full,
 * then filled again by the strings in use.
 */
class KnownStrings {
  readonly #strings = new Map<string, string>();
  #characters = 0;

  constructor(private readonly maxCharacters: number) {}

  /** The kept string equal to `text`, if any. */
  get(text: string): string | undefined {
    return this.#strings.get(text);
  }

  /** The kept copy of `text` (which has passed its field's check), kept now if it was not. */
  share(text: string): string {
    return this.#strings.get(text) ?? this.keep(text);
  }

  /** Keeps `text` (which has passed its field's check) and returns it. */
  keep(text: string): string {
    if (this.#characters + text.length > this.maxCharacters) {
      this.#strings.clear();
      this.#characters = 0;
    }
    this.#strings.set(text, text);
    this.#characters += text.length;
    return text;
  }
}

// One set per kind of check, so that a string is taken as checked only for the kind of field it passed. About
// 5 MB at most in all; 20,000 sites with their URLs fit.
const knownUrls = new KnownStrings(2_000_000);
const knownNames = new KnownStrings(1_000_000);
const knownTexts = new KnownStrings(2_000_000);

/**
 * The kept copy of a text field that often repeats (a site's pattern, its certificate's expiry, an error
 * message), so that each queued check does not hold its own.
 */
export function shareText(text: string): string {
  return knownTexts.share(text);
}

/** Reads the fields of one message; every method throws for a missing, mistyped or out-of-range field. */
export class FieldReader {
  constructor(private readonly json: JsonObject) {}

  #get(field: string): unknown {
    if (!(field in this.json)) throw new TypeError(`Cannot decode check: field '${field}' is missing`);
    return this.json[field];
  }

  #wrongType(field: string, expected: string, value: unknown): never {
    throw new TypeError(`Cannot decode check: field '${field}' must be ${expected}: got ${describe(value)}`);
  }

  /** Whether the message has the field: a field added within v1 may be missing (older writers). */
  has(field: string): boolean {
    return field in this.json;
  }

  /** Whether the field is null (it must be present). */
  isNull(field: string): boolean {
    return this.#get(field) === null;
  }

  string(field: string, minLength: number, maxLength: number): string {
    const value = this.#get(field);
    if (typeof value !== "string") this.#wrongType(field, "a string", value);
    // PostgreSQL text cannot hold NUL; a string with one is malformed, not merely odd.
    if (value.includes("\0")) {
      throw new RangeError(`Cannot decode check: field '${field}' must not contain NUL`);
    }
    // JSON may escape half a surrogate pair ("\ud800"), which UTF-8 cannot carry: PostgreSQL would get U+FFFD,
    // and a name would no longer match the row stored for it.
    if (!value.isWellFormed()) {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be valid Unicode: it holds an unpaired surrogate`,
      );
    }
    if (value.length < minLength || value.length > maxLength) {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be ${minLength} to ${maxLength} UTF-16 code units long (an emoji counts 2): got ${value.length}`,
      );
    }
    return value;
  }

  name(field: string, maxLength: number): string {
    const value = this.string(field, 1, maxLength);
    const known = knownNames.get(value);
    if (known !== undefined) return known;
    // Control characters (NUL above all: PostgreSQL text cannot hold it) have no place in a name.
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(value)) {
      throw new RangeError(`Cannot decode check: field '${field}' must not contain control characters`);
    }
    return knownNames.keep(value);
  }

  url(field: string, maxLength: number): string {
    const value = this.string(field, 1, maxLength);
    const known = knownUrls.get(value);
    if (known !== undefined) return known;
    let protocol: string;
    try {
      protocol = new URL(value).protocol;
    } catch {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be an absolute URL: got ${describe(value)}`,
      );
    }
    if (protocol !== "http:" && protocol !== "https:") {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be an http or https URL: got ${describe(value)}`,
      );
    }
    return knownUrls.keep(value);
  }

  checkId(field: string): string {
    const value = this.string(field, 1, 64);
    if (!isCheckId(value)) {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be a UUID or a ULID: got ${describe(value)}`,
      );
    }
    return value;
  }

  timestamp(field: string): string {
    const value = this.string(field, 1, 40);
    const problem = utcTimestampProblem(value);
    if (problem === "format") {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be an RFC 3339 UTC timestamp: got ${describe(value)}`,
      );
    }
    if (problem === "range") {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be between 1970 and 9999: got ${describe(value)}`,
      );
    }
    return value;
  }

  boolean(field: string): boolean {
    const value = this.#get(field);
    if (typeof value !== "boolean") this.#wrongType(field, "a boolean", value);
    return value;
  }

  number(field: string, min: number, max: number): number {
    const value = this.#get(field);
    if (typeof value !== "number") this.#wrongType(field, "a number", value);
    if (!(value >= min && value <= max)) {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be between ${min} and ${max}: got ${value}`,
      );
    }
    return value;
  }

  /**
   * A duration of 0 to `max` milliseconds, to the microsecond (as the agent measures): a value below that, say
   * 1e-320, is not one the database's `real` can hold, and would fail its whole batch.
   */
  milliseconds(field: string, max: number): number {
    return Math.round(this.number(field, 0, max) * 1000) / 1000;
  }

  integer(field: string, min: number, max: number): number {
    const value = this.number(field, min, max);
    if (!Number.isInteger(value)) this.#wrongType(field, "an integer", value);
    return value;
  }

  /** An `{ kind, message }` object, its kind one of `kinds` (returned as the constant from `kinds`). */
  error<Kind extends string>(field: string, kinds: readonly Kind[]): { kind: Kind; message: string } {
    const value = this.#get(field);
    if (!isObject(value)) this.#wrongType(field, "an object or null", value);
    // The kind as the constant in `kinds`, not the message's own copy of the text.
    const kind = kinds.find((known) => known === value.kind);
    if (kind === undefined) {
      throw new RangeError(
        `Cannot decode check: field 'error.kind' must be one of ${kinds.join(", ")}: got ${
          describe(value.kind)
        }`,
      );
    }
    const message = value.message;
    if (typeof message !== "string") this.#wrongType("error.message", "a string", message);
    if (message.includes("\0")) {
      throw new RangeError("Cannot decode check: field 'error.message' must not contain NUL");
    }
    // As in every other text field: PostgreSQL would store U+FFFD in its place, changing the message silently.
    if (!message.isWellFormed()) {
      throw new RangeError(
        "Cannot decode check: field 'error.message' must be valid Unicode: it holds an unpaired surrogate",
      );
    }
    return { kind, message: knownTexts.share(message) };
  }
}
