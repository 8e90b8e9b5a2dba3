/**
 * Waiting out a database that is away: which errors are worth retrying, and a retry loop with backoff.
 *
 * @module
 */
import { Backoff, delay } from "../async.ts";
import type { Logger } from "../log.ts";

/** An error's message with its code (SQLSTATE, or the TLS or socket error code) when it has one. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
}

// Connection trouble and server shutdowns are worth waiting out; a broken migration or a permission error
// is not, and stops the sink with its message. An error without a code is waited out too: a socket or TLS
// failure may come without one (./../sink/batch_writer.ts asks the database before it blames the data).
export function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return true;
  // Conflicts, a lock not granted in time and a cancelled statement pass once the other sessions move on.
  return isConnectionFailure(error) || code === "40001" || code === "40P01" || code === "55P03" ||
    code === "57014";
}

/** Whether `error` says the database could not be reached or went away (an error code says so). */
export function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return false;
  return code.startsWith("08") || code.startsWith("57P") || code === "53300" ||
    code === "CONNECTION_CLOSED" || code === "CONNECTION_ENDED" || code === "CONNECTION_DESTROYED" ||
    code === "CONNECT_TIMEOUT" || code === "CLIENT_DEADLINE" || code === "ECONNREFUSED" ||
    code === "ECONNRESET" || code === "ETIMEDOUT" || code === "EPIPE";
}

/**
 * Runs `action` until it succeeds or `shutdown` aborts, logging each failed attempt and waiting with backoff.
 * An error that is not transient (see {@linkcode isTransient}) ends it with the action named.
 */
export async function retrying<T>(
  log: Logger,
  shutdown: AbortSignal,
  what: string,
  action: () => Promise<T>,
  retryable: (error: unknown) => boolean = isTransient,
): Promise<T | undefined> {
  const backoff = new Backoff({ minTimeout: 500, maxTimeout: 15_000 });
  while (!shutdown.aborted) {
    try {
      return await action();
    } catch (error) {
      if (shutdown.aborted) break; // the shutdown ended the attempt: nothing to report
      if (!retryable(error)) throw new Error(`Cannot ${what}: ${describeError(error)}`, { cause: error });
      const wait = backoff.next();
      log.warn(`cannot ${what}; will retry`, { error: (error as Error).message, retry_in_ms: wait });
      // A shutdown ends the wait early; the loop condition then ends the loop.
      await delay(wait, { signal: shutdown }).catch(() => {});
    }
  }
  return undefined;
}
