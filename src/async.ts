/**
 * Waiting, deadlines and backoff, with the names and contracts of `@std/async` (which cannot be reached
 * from our machines): {@linkcode delay}, {@linkcode deadline}, {@linkcode abortable} and
 * {@linkcode exponentialBackoffWithJitter}, plus {@linkcode Backoff} for retry loops that own their waiting.
 *
 * @module
 */

/** Options of {@linkcode delay}. */
export interface DelayOptions {
  /** Aborting it rejects the delay with the signal's reason and clears the timer. */
  readonly signal?: AbortSignal;
}

/**
 * Resolves after `ms` milliseconds; rejects with `signal.reason` as soon as `signal` aborts.
 *
 * @example
 * ```ts
 * import { delay } from "./async.ts";
 * await delay(10);
 * const stopping = new AbortController();
 * await delay(10_000, { signal: stopping.signal }).catch(() => {}); // ends early when stopping aborts
 * ```
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * Settles as `promise` does; rejects with `signal.reason` as soon as `signal` aborts (`promise` itself
 * is not cancelled: the caller's signal should also reach whatever produces it).
 *
 * @example
 * ```ts
 * import { abortable } from "./async.ts";
 * const stopping = new AbortController();
 * const value = await abortable(Promise.resolve(42), stopping.signal); // 42
 * ```
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/** Options of {@linkcode deadline}. */
export interface DeadlineOptions {
  /** Aborting it rejects with the signal's reason before the deadline. */
  readonly signal?: AbortSignal;
}

/**
 * Settles as `promise` does if it settles within `ms`; otherwise rejects with a `DOMException` named
 * `"TimeoutError"`, as `@std/async`'s `deadline` does. Unlike std's (which uses `AbortSignal.timeout`),
 * the timer is cleared as soon as `promise` settles, so no timer outlives the call.
 *
 * @example
 * ```ts
 * import { deadline, delay } from "./async.ts";
 * try {
 *   await deadline(delay(1_000), 10);
 * } catch (error) {
 *   console.log((error as DOMException).name); // "TimeoutError"
 * }
 * ```
 */
export async function deadline<T>(
  promise: Promise<T>,
  ms: number,
  options: DeadlineOptions = {},
): Promise<T> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new DOMException("Signal timed out.", "TimeoutError")), ms);
  const signal = options.signal === undefined
    ? timeout.signal
    : AbortSignal.any([timeout.signal, options.signal]);
  try {
    return await abortable(promise, signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `error` is the rejection of a {@linkcode deadline} that passed (or of `AbortSignal.timeout`). */
export function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/**
 * The delay before retry number `attempt` (from 0), as `@std/async`'s `retry` computes it: the ceiling
 * `min(cap, base * multiplier ** attempt)`, less a random share of up to `jitter` of it. With `jitter` 1
 * this is "full jitter" (anywhere from 0 to the ceiling); with 0.5, "equal jitter" (the upper half).
 *
 * @example
 * ```ts
 * import { exponentialBackoffWithJitter } from "./async.ts";
 * const ms = exponentialBackoffWithJitter(10_000, 200, 3, 2, 0.5); // between 800 and 1,600
 * ```
 */
export function exponentialBackoffWithJitter(
  cap: number,
  base: number,
  attempt: number,
  multiplier: number,
  jitter: number,
): number {
  const ceiling = Math.min(cap, base * multiplier ** attempt);
  return (1 - jitter * Math.random()) * ceiling;
}

/** Options of {@linkcode Backoff}, named as `@std/async`'s `RetryOptions`. */
export interface BackoffOptions {
  /** The ceiling of the first delay in milliseconds; 200 by default. */
  readonly minTimeout?: number;
  /** The largest ceiling in milliseconds; 10,000 by default. */
  readonly maxTimeout?: number;
  /** How much the ceiling grows per failed attempt; 2 by default. */
  readonly multiplier?: number;
  /** The share of the ceiling that is random; 0.5 by default (each delay in the ceiling's upper half). */
  readonly jitter?: number;
}

/**
 * Exponential backoff for a retry loop that does its own waiting (heartbeats between slices, a shutdown
 * signal): delays from {@linkcode exponentialBackoffWithJitter}, so that many clients that lost the same
 * server do not return in step.
 *
 * @example
 * ```ts
 * import { Backoff, delay } from "./async.ts";
 * const backoff = new Backoff();
 * await delay(backoff.next()); // 100-200 ms, then 200-400 ms, ... up to 5-10 s
 * backoff.reset(); // after a success
 * ```
 */
export class Backoff {
  #attempt = 0;
  readonly #minTimeout: number;
  readonly #maxTimeout: number;
  readonly #multiplier: number;
  readonly #jitter: number;

  constructor(options: BackoffOptions = {}) {
    this.#minTimeout = options.minTimeout ?? 200;
    this.#maxTimeout = options.maxTimeout ?? 10_000;
    this.#multiplier = options.multiplier ?? 2;
    this.#jitter = options.jitter ?? 0.5;
  }

  /** Failed attempts since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The next delay in whole milliseconds; counts one more failed attempt. */
  next(): number {
    // Capping the exponent keeps the power finite however long the outage lasts.
    const attempt = Math.min(this.#attempt, 30);
    this.#attempt++;
    return Math.round(
      exponentialBackoffWithJitter(
        this.#maxTimeout,
        this.#minTimeout,
        attempt,
        this.#multiplier,
        this.#jitter,
      ),
    );
  }

  /** Starts again from the first delay, after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}
