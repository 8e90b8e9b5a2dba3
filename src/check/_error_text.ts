/**
 * The text of a probe's error as published: bounded, and valid Unicode. Private to `probe.ts`.
 *
 * @module
 */
import { clip } from "../clip.ts";
import { type CheckError, MAX_ERROR_MESSAGE_LENGTH } from "../message.ts";

/**
 * `error` with its message cut to {@linkcode MAX_ERROR_MESSAGE_LENGTH} characters and any unpaired surrogate
 * replaced (the sink refuses a message that holds one). Parts of a message come from the site (a redirect's
 * Location, the text of a TLS or HTTP error), and a message too long for the sink (64 KiB in all) would lose
 * the result.
 */
export function boundedError(error: CheckError): CheckError {
  const message = clip(error.message, MAX_ERROR_MESSAGE_LENGTH).toWellFormed();
  return message === error.message ? error : { kind: error.kind, message };
}
