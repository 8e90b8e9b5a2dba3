/**
 * A probe's response body: read up to the site's limit, then matched against its pattern, here or in a
 * pattern worker. Private to `probe.ts`.
 *
 * @module
 */
import { abortable } from "../async.ts";
import { matchPattern, type PatternMatch } from "./regex.ts";
import { MAIN_THREAD_COST, patternCost, type PatternWorkers } from "./pattern_workers.ts";

/** What {@linkcode readBody} read. */
export interface BodyRead {
  /** Whether the response has a body at all (a 204, a 304 or a HEAD's has none). */
  readonly present: boolean;
  /** Bytes read (at most the limit), also when reading failed part way. */
  readonly bytes: number;
  /** What was read, when the read completed or reached the limit. */
  readonly data: Uint8Array;
  /** Whether reading stopped at the limit, with more to come. */
  readonly capped: boolean;
  /** Why reading failed, if it did. */
  readonly error?: unknown;
}

// What an unannounced body's buffer starts at; it doubles as the body comes, up to the limit.
const INITIAL_CAPACITY = 16 * 1024;
// What an announced body's buffer starts at, at most.
const MAX_INITIAL_CAPACITY = 1024 * 1024;

/**
 * Reads the body into one buffer of its own, keeping at most `limit` bytes, and cancels the stream there.
 *
 * The reader fills that buffer itself (a BYOB reader): Deno's default reader hands every read a fresh 64 KiB
 * buffer, so a site that sends its body a byte at a time had each byte hold 64 KiB (gigabytes in seconds),
 * and thousands of small bodies a second cost more in buffers than in probing. The buffer starts at the
 * announced length when Content-Length frames the body, else small, and doubles up to the limit, so neither
 * the site's framing nor its compression can make the agent hold more than about twice the limit.
 */
export async function readBody(response: Response, limit: number, signal: AbortSignal): Promise<BodyRead> {
  const stream = response.body;
  if (stream === null) return { present: false, bytes: 0, data: new Uint8Array(0), capped: false };
  // One byte past the limit tells a body that goes on from one that ends there.
  const most = limit + 1;
  const announced = framedLength(response.headers);
  const reader = bufferReader(stream);
  // A length announced is not trusted with more than a megabyte before the bytes come.
  let data: Uint8Array = new Uint8Array(
    Math.max(1, Math.min(most, announced === null ? INITIAL_CAPACITY : announced + 1, MAX_INITIAL_CAPACITY)),
  );
  let bytes = 0;
  try {
    while (bytes < most && (announced === null || bytes < announced)) {
      if (bytes === data.byteLength) data = grown(data, Math.min(most, data.byteLength * 2));
      const { done, value } = await abortable(reader.fill(data.subarray(bytes)), signal);
      // A BYOB read takes the buffer over and hands it back as `value`'s (the old views are detached).
      data = new Uint8Array(value.buffer);
      if (done) break;
      bytes += value.byteLength;
    }
  } catch (error) {
    await reader.cancel();
    return { present: true, bytes: Math.min(bytes, limit), data: new Uint8Array(0), capped: false, error };
  }
  // Also ends a body read to its announced length; cancelling a finished stream is a no-op.
  await reader.cancel();
  const capped = bytes > limit;
  if (capped) bytes = limit;
  return { present: true, bytes, data: data.subarray(0, bytes), capped };
}

/** Fills buffers from a body stream. */
interface BufferReader {
  /** Reads into `into`, whose buffer it may take over: what it read, as a view of the buffer to use now. */
  fill(into: Uint8Array): Promise<{ done: boolean; value: Uint8Array }>;
  /** Ends the stream; never rejects. */
  cancel(): Promise<void>;
}

/**
 * The reader of `stream`: `fetch`'s bodies are byte streams, whose BYOB reader reads into the buffer it is
 * given; another stream's chunks are copied in, each let go once copied.
 */
function bufferReader(stream: ReadableStream<Uint8Array>): BufferReader {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream: read below.
  }
  if (byob !== null) {
    const reader = byob;
    return {
      fill: async (into) => {
        const { done, value } = await reader.read(into);
        if (value === undefined) throw new Error("Cannot read the body: its stream was cancelled");
        return { done, value };
      },
      cancel: () => reader.cancel().catch(() => {}),
    };
  }
  const reader = stream.getReader();
  let rest: Uint8Array | null = null;
  return {
    fill: async (into) => {
      if (rest === null) {
        const { done, value } = await reader.read();
        if (done) return { done, value: into.subarray(0, 0) };
        rest = value;
      }
      const part = rest.subarray(0, into.byteLength);
      into.set(part);
      rest = part.byteLength < rest.byteLength ? rest.subarray(part.byteLength) : null;
      return { done: false, value: into.subarray(0, part.byteLength) };
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}

/**
 * The body's length when Content-Length frames it: not when Transfer-Encoding is also sent (it then frames
 * the body, RFC 9112 section 6.3, and Content-Length says nothing), nor for a compressed body (Content-Length is
 * then its compressed size: a few hundred bytes of brotli can hold a gigabyte).
 */
function framedLength(headers: Headers): number | null {
  const length = headers.get("content-length")?.trim();
  const encoding = headers.get("content-encoding");
  if (length === undefined || headers.has("transfer-encoding")) return null;
  if (encoding !== null && encoding.trim().toLowerCase() !== "identity") return null;
  return /^\d{1,15}$/.test(length) ? Number(length) : null;
}

/** A buffer of `capacity` bytes that starts with `data`. */
function grown(data: Uint8Array, capacity: number): Uint8Array {
  const larger = new Uint8Array(capacity);
  larger.set(data);
  return larger;
}

// decode() without { stream: true } keeps no state between calls, so every probe can share one.
const BODY_DECODER = new TextDecoder();

/**
 * Matches the body here, or in a worker when the match could take long (./pattern_workers.ts); null when the
 * worker's match did not end within `remainingMs`.
 */
export function matchBody(
  regex: RegExp,
  body: Uint8Array,
  patterns: PatternWorkers | undefined,
  remainingMs: number,
): PatternMatch | Promise<PatternMatch | null> | null {
  if (patterns === undefined || patternCost(regex, body.byteLength) <= MAIN_THREAD_COST) {
    return matchPattern(regex, BODY_DECODER.decode(body));
  }
  return remainingMs > 0 ? patterns.match(regex, body, remainingMs) : null;
}
