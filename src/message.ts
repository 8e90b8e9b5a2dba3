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
/**
 * The longest error message the agent publishes, and the most of one the pages and the terminal view show (a
 * reader takes longer ones, up to the message's 64 KiB, from other producers).
 */
export const MAX_ERROR_MESSAGE_LENGTH = 1_000;

import { describe, FieldReader, isObject, shareText } from "./_message_fields.ts";

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
    site: read.name("site", MAX_NAME_LENGTH),
    url: read.url("url", MAX_URL_LENGTH),
    agent: read.name("agent", MAX_NAME_LENGTH),
    region: read.isNull("region") ? null : read.name("region", MAX_NAME_LENGTH),
    scheduled_at: read.timestamp("scheduled_at"),
    started_at: read.timestamp("started_at"),
    up: read.boolean("up"),
    status: read.isNull("status") ? null : read.integer("status", 100, 599),
    ttfb_ms: read.isNull("ttfb_ms") ? null : read.milliseconds("ttfb_ms", MAX_DURATION_MS),
    duration_ms: read.milliseconds("duration_ms", MAX_DURATION_MS),
    bytes: read.isNull("bytes") ? null : read.integer("bytes", 0, MAX_BODY_BYTES),
    regex: read.isNull("regex") ? null : shareText(read.string("regex", 1, MAX_URL_LENGTH)),
    regex_matched: read.isNull("regex_matched") ? null : read.boolean("regex_matched"),
    cert_expires_at: read.isNull("cert_expires_at") ? null : shareText(read.timestamp("cert_expires_at")),
    error: read.isNull("error") ? null : read.error("error", ERROR_KINDS),
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
