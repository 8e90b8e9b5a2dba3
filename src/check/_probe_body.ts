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
  /** Bytes read (at most the limit). */
  readonly bytes: number;
  /** What was read, when the read completed or reached the limit. */
  readonly data: Uint8Array;
  /** Whether reading stopped at the limit, with more to come. */
  readonly capped: boolean;
  /** Why reading failed, if it did. */
  readonly error?: unknown;
}

// Bodies up to this size, announced by Content-Length, are read in one call: Deno's stream reader hands every
// read a fresh 64 KiB buffer, which at thousands of probes a second costs more memory and time than the
// probe itself. Larger or unannounced bodies are streamed, so reading stops at the limit.
const WHOLE_BODY_MAX = 64 * 1024;

/** Reads the body chunk by chunk, keeping at most `limit` bytes, and cancels the stream there. */
export async function readBody(response: Response, limit: number, signal: AbortSignal): Promise<BodyRead> {
  const stream = response.body;
  if (stream === null) return { bytes: 0, data: new Uint8Array(0), capped: false };
  const announced = Number(response.headers.get("content-length") ?? NaN);
  // A compressed body's Content-Length is its compressed size: a few hundred bytes of brotli can hold a
  // gigabyte, which a read in one call would inflate whole, past the limit and the deadline.
  const encoding = response.headers.get("content-encoding");
  const plain = encoding === null || encoding.trim().toLowerCase() === "identity";
  if (plain && announced <= Math.min(limit, WHOLE_BODY_MAX)) {
    try {
      // No abortable() here: the Fetch standard errors the body of a response whose request signal aborts.
      const data = await response.bytes();
      const capped = data.byteLength > limit;
      return {
        bytes: capped ? limit : data.byteLength,
        data: capped ? data.subarray(0, limit) : data,
        capped,
      };
    } catch (error) {
      return { bytes: 0, data: new Uint8Array(0), capped: false, error };
    }
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let capped = false;
  try {
    while (true) {
      const { done, value } = await abortable(reader.read(), signal);
      if (done) break;
      const room = limit - bytes;
      const part = value.byteLength > room ? value.subarray(0, room) : value;
      if (part.byteLength > 0) chunks.push(part);
      bytes += part.byteLength;
      if (value.byteLength >= room) {
        capped = true;
        break;
      }
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    return { bytes, data: new Uint8Array(0), capped, error };
  }
  // Also ends a body that ended exactly at the limit; cancelling a finished stream is a no-op.
  await reader.cancel().catch(() => {});
  const data = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes, data, capped };
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
