/**
 * The wire format of one check result: encoding for the agent and strict decoding for the sink, which
 * treats every Kafka message as untrusted input.
 *
 * @module
 */

/** What kind of failure a probe ended in. */
export type ErrorKind = "dns" | "connect" | "tls" | "timeout" | "http" | "content" | "redirects" | "other";

/** Every error kind, in the order the database enum declares them. */
export const ERROR_KINDS: readonly ErrorKind[] = [
  "dns",
  "connect",
  "tls",
  "timeout",
  "http",
  "content",
  "redirects",
  "other",
];

/** Why a probe was not up. */
export interface CheckError {
  readonly kind: ErrorKind;
  readonly message: string;
}

/** One probe of one site: the message value, version 1. Field names are the wire names. */
export interface CheckResult {
  readonly v: 1;
  readonly id: string;
  readonly site: string;
  readonly url: string;
  readonly agent: string;
  readonly region: string | null;
  readonly scheduled_at: string;
  readonly started_at: string;
  readonly up: boolean;
  readonly status: number | null;
  readonly ttfb_ms: number | null;
  readonly duration_ms: number;
  readonly bytes: number | null;
  readonly regex: string | null;
  readonly regex_matched: boolean | null;
  readonly cert_expires_at: string | null;
  readonly error: CheckError | null;
  /** The site's probe interval in milliseconds (added within v1: a message without it reads as
   * {@linkcode DEFAULT_INTERVAL_MS}), so readers can tell when a location has gone silent. */
  readonly interval_ms: number;
}

/** The largest message value a reader accepts. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** The longest site name, agent name or region label. */
export const MAX_NAME_LENGTH = 200;
/** The longest URL. */
export const MAX_URL_LENGTH = 4096;
/** The longest duration a reader accepts, in milliseconds (one day). */
export const MAX_DURATION_MS = 86_400_000;
/** The interval a reader assumes for a message without `interval_ms` (written before the field existed). */
export const DEFAULT_INTERVAL_MS = 60_000;
/** The longest interval a reader accepts, in milliseconds (one day). */
export const MAX_INTERVAL_MS = 86_400_000;
/** The largest body size, in bytes, that fits the database's integer column. */
export const MAX_BODY_BYTES = 2_147_483_647;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a check result as the UTF-8 JSON message value.
 *
 * @example
 * ```ts
 * declare const result: CheckResult;
 * const value = encodeCheck(result); // Uint8Array, the Kafka message value
 * ```
 */
export function encodeCheck(result: CheckResult): Uint8Array {
  return encoder.encode(JSON.stringify(result));
}

/**
 * Decodes a Kafka message value into a check result, or throws an error whose message says precisely what is
 * wrong (it is stored in the dead-letter table): `SyntaxError` for bytes that are not JSON, `TypeError` for a
 * missing or mistyped field, `RangeError` for an out-of-range value, an unknown version or an oversized value.
 * Fields a version-1 reader does not know are ignored.
 *
 * @example
 * ```ts
 * import type { KafkaMessage } from "kafkajs";
 * declare const message: KafkaMessage;
 * const check = decodeCheck(message.value);
 * ```
 */
export function decodeCheck(value: Uint8Array | null): CheckResult {
  if (value === null) throw new TypeError("Cannot decode check: the message has no value");
  if (value.byteLength > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `Cannot decode check: the value is ${value.byteLength} bytes, over the limit of ${MAX_MESSAGE_BYTES}`,
    );
  }
  let text: string;
  try {
    text = strictDecoder.decode(value);
  } catch {
    throw new TypeError("Cannot decode check: the value is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`Cannot decode check: the value is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(json)) {
    throw new TypeError(`Cannot decode check: the value is ${describe(json)}, not an object`);
  }
  if (!("v" in json)) throw new TypeError("Cannot decode check: field 'v' is missing");
  if (json.v !== 1) throw new RangeError(`Cannot decode check: version ${describe(json.v)} is not supported`);
  const read = new FieldReader(json);
  // Written out field by field rather than with callbacks: this runs for every message the sink reads.
  const result: CheckResult = {
    v: 1,
    id: read.checkId("id"),
    site: read.name("site"),
    url: read.url("url"),
    agent: read.name("agent"),
    region: read.isNull("region") ? null : read.name("region"),
    scheduled_at: read.timestamp("scheduled_at"),
    started_at: read.timestamp("started_at"),
    up: read.boolean("up"),
    status: read.isNull("status") ? null : read.integer("status", 100, 599),
    ttfb_ms: read.isNull("ttfb_ms") ? null : read.number("ttfb_ms", 0, MAX_DURATION_MS),
    duration_ms: read.number("duration_ms", 0, MAX_DURATION_MS),
    bytes: read.isNull("bytes") ? null : read.integer("bytes", 0, MAX_BODY_BYTES),
    regex: read.isNull("regex") ? null : knownTexts.share(read.string("regex", 1, MAX_URL_LENGTH)),
    regex_matched: read.isNull("regex_matched") ? null : read.boolean("regex_matched"),
    cert_expires_at: read.isNull("cert_expires_at")
      ? null
      : knownTexts.share(read.timestamp("cert_expires_at")),
    error: read.isNull("error") ? null : read.error("error"),
    interval_ms: read.has("interval_ms")
      ? read.integer("interval_ms", 1, MAX_INTERVAL_MS)
      : DEFAULT_INTERVAL_MS,
  };
  if (result.up !== (result.error === null)) {
    throw new RangeError(
      `Cannot decode check: field 'up' is ${result.up} but field 'error' is ${
        result.error === null ? "null" : "set"
      }`,
    );
  }
  return result;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `'${value.length > 40 ? value.slice(0, 40) + "…" : value}'`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i;
// RFC 3339 in UTC ("Z"), with optional fractional seconds.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const MIN_TIME = Date.UTC(1970, 0, 1);

// Compares fields rather than formatting the date back: this runs for every timestamp of every message.
function sameSecond(time: number, text: string): boolean {
  const date = new Date(time);
  return date.getUTCSeconds() === twoDigits(text, 17) && date.getUTCMinutes() === twoDigits(text, 14) &&
    date.getUTCHours() === twoDigits(text, 11) && date.getUTCDate() === twoDigits(text, 8) &&
    date.getUTCMonth() + 1 === twoDigits(text, 5);
}

function twoDigits(text: string, at: number): number {
  return (text.charCodeAt(at) - 48) * 10 + text.charCodeAt(at + 1) - 48;
}
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59);

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

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

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

class FieldReader {
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
        `Cannot decode check: field '${field}' must be ${minLength} to ${maxLength} characters long: got ${value.length}`,
      );
    }
    return value;
  }

  name(field: string): string {
    const value = this.string(field, 1, MAX_NAME_LENGTH);
    const known = knownNames.get(value);
    if (known !== undefined) return known;
    // Control characters (NUL above all: PostgreSQL text cannot hold it) have no place in a name.
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(value)) {
      throw new RangeError(`Cannot decode check: field '${field}' must not contain control characters`);
    }
    return knownNames.keep(value);
  }

  url(field: string): string {
    const value = this.string(field, 1, MAX_URL_LENGTH);
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
    if (!UUID.test(value) && !ULID.test(value)) {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be a UUID or a ULID: got ${describe(value)}`,
      );
    }
    return value;
  }

  timestamp(field: string): string {
    const value = this.string(field, 1, 40);
    // What agents write (toISOString, milliseconds): read digit by digit, without a regex or Date.parse.
    if (value.length === 24 && isMillisTimestamp(value)) return value;
    const time = Date.parse(value);
    // Date.parse rolls an impossible date (February 31st) over into the next month: compare it back.
    if (!TIMESTAMP.test(value) || Number.isNaN(time) || !sameSecond(time, value)) {
      throw new RangeError(
        `Cannot decode check: field '${field}' must be an RFC 3339 UTC timestamp: got ${describe(value)}`,
      );
    }
    if (time < MIN_TIME || time > MAX_TIME) {
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

  integer(field: string, min: number, max: number): number {
    const value = this.number(field, min, max);
    if (!Number.isInteger(value)) this.#wrongType(field, "an integer", value);
    return value;
  }

  error(field: string): CheckError {
    const value = this.#get(field);
    if (!isObject(value)) this.#wrongType(field, "an object or null", value);
    // The kind as the constant in ERROR_KINDS, not the message's own copy of the text.
    const kind = ERROR_KINDS.find((known) => known === value.kind);
    if (kind === undefined) {
      throw new RangeError(
        `Cannot decode check: field 'error.kind' must be one of ${ERROR_KINDS.join(", ")}: got ${
          describe(value.kind)
        }`,
      );
    }
    const message = value.message;
    if (typeof message !== "string") this.#wrongType("error.message", "a string", message);
    if (message.includes("\0")) {
      throw new RangeError("Cannot decode check: field 'error.message' must not contain NUL");
    }
    return { kind, message: knownTexts.share(message) };
  }
}

/** Converts a check id (UUID or ULID) to the canonical lower-case UUID text the database stores. */
export function checkIdToUuid(id: string): string {
  if (UUID.test(id)) return id.toLowerCase();
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  let value = 0n;
  for (const char of id.toUpperCase()) value = value * 32n + BigInt(alphabet.indexOf(char));
  const hex = value.toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Makes a new time-ordered check id: a UUIDv7 (RFC 9562), 48 bits of Unix milliseconds then random bits.
 *
 * @example
 * ```ts
 * newCheckId(); // "019ab2c4-5d1e-7f3a-9b2c-1d2e3f4a5b6c"
 * ```
 */
export function newCheckId(now: number = Date.now()): string {
  // One id per probe, thousands a second: random bytes come from a pool filled 400 ids at a time and hex
  // from a table: a getRandomValues call and 16 padStart calls per id cost 7-11 us, ~5 % of a probe.
  if (randomUsed + 10 > RANDOM_POOL.length) {
    crypto.getRandomValues(RANDOM_POOL);
    randomUsed = 0;
  }
  const r = RANDOM_POOL;
  const o = randomUsed;
  randomUsed += 10;
  const t5 = now % 256;
  const t4 = Math.floor(now / 0x100) % 256;
  const t3 = Math.floor(now / 0x10000) % 256;
  const t2 = Math.floor(now / 0x1000000) % 256;
  const t1 = Math.floor(now / 0x100000000) % 256;
  const t0 = Math.floor(now / 0x10000000000) % 256;
  return HEX[t0]! + HEX[t1]! + HEX[t2]! + HEX[t3]! + "-" + HEX[t4]! + HEX[t5]! + "-" +
    HEX[0x70 | (r[o]! & 0x0f)]! + HEX[r[o + 1]!]! + "-" + HEX[0x80 | (r[o + 2]! & 0x3f)]! + HEX[r[o + 3]!]! +
    "-" +
    HEX[r[o + 4]!]! + HEX[r[o + 5]!]! + HEX[r[o + 6]!]! + HEX[r[o + 7]!]! + HEX[r[o + 8]!]! + HEX[r[o + 9]!]!;
}

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

const HEX: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
/** The 74 random bits of an id take 10 bytes of this pool. */
const RANDOM_POOL = new Uint8Array(4000);
let randomUsed = RANDOM_POOL.length;
