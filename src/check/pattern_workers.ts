/**
 * A site's pattern matched off the agent's thread when the match could take long. V8's linear-time engine
 * bounds a match by the body's length times the pattern's size, which can still be seconds (`a?` written a
 * hundred times, then `b`, on a 2 MB body: 12 s): on the agent's thread that would hold every other site's
 * schedule and deadlines. A match whose estimated cost ({@linkcode patternCost}) is over
 * {@linkcode MAIN_THREAD_COST} goes to one of a few workers; one that outlasts the probe's time is reported as
 * too slow, and its worker is replaced. `Worker.terminate()` does not interrupt a running match in Deno 2.9,
 * so the old one ends in the background, within the same linear bound.
 *
 * @module
 */
import type { PatternMatch } from "./regex.ts";
import type { PatternJob } from "./pattern_worker.ts";

/** The worker module; `deno compile` includes it by this path (dev/compile.sh). */
export const PATTERN_WORKER_URL: URL = new URL("./pattern_worker.ts", import.meta.url);

/**
 * The most {@linkcode patternCost} matched on the agent's thread: about 70 ms at the linear engine's worst
 * (36 ns a unit here), and well under a millisecond for the usual literal-led pattern on a page of HTML.
 */
export const MAIN_THREAD_COST = 2 ** 21;

/**
 * An upper estimate of what matching `regex` on `bytes` bytes costs: the bytes times the pattern's size, with
 * each counted repetition (`{n}`, `{n,m}`) multiplying it, as the linear engine unrolls them.
 */
export function patternCost(regex: RegExp, bytes: number): number {
  let size = regex.source.length;
  for (const [, min, max] of regex.source.matchAll(/\{(\d+)(?:,(\d*))?\}/g)) {
    size *= Math.max(1, Number(max || min));
  }
  return size * bytes;
}

/** The workers, started when first needed, at most `max` at once. */
export class PatternWorkers {
  readonly #idle: Worker[] = [];
  #started = 0;
  #waiting: (() => void)[] = [];
  #closed = false;

  constructor(private readonly max = 2) {}

  /**
   * Matches `regex` on `body` in a worker (the body is moved there: the caller must not use it after).
   * Resolves with the match, or null when none came within `timeoutMs`.
   */
  async match(regex: RegExp, body: Uint8Array, timeoutMs: number): Promise<PatternMatch | null> {
    const until = Date.now() + timeoutMs;
    const worker = await this.#take(until);
    if (worker === null) return null;
    return await new Promise<PatternMatch | null>((resolve) => {
      const timer = setTimeout(() => {
        this.#discard(worker);
        resolve(null);
      }, Math.max(0, until - Date.now()));
      worker.onmessage = (event: MessageEvent<PatternMatch>) => {
        clearTimeout(timer);
        this.#release(worker);
        resolve(event.data);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        clearTimeout(timer);
        this.#discard(worker);
        resolve({ matched: null, error: event.message });
      };
      const job: PatternJob = { source: regex.source, body };
      worker.postMessage(job, body.byteOffset === 0 ? [body.buffer as ArrayBuffer] : []);
    });
  }

  /** Ends the idle workers, and each busy one when its match ends. */
  close(): void {
    this.#closed = true;
    for (const worker of this.#idle.splice(0)) worker.terminate();
    this.#wakeAll();
  }

  async #take(until: number): Promise<Worker | null> {
    while (!this.#closed && Date.now() < until) {
      const idle = this.#idle.pop();
      if (idle !== undefined) return idle;
      if (this.#started < this.max) {
        this.#started++;
        return new Worker(PATTERN_WORKER_URL.href, { type: "module" });
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiting = this.#waiting.filter((other) => other !== wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(0, until - Date.now()));
        this.#waiting.push(wake);
      });
    }
    return null;
  }

  #release(worker: Worker): void {
    if (this.#closed) {
      worker.terminate();
      this.#started--;
    } else this.#idle.push(worker);
    this.#wakeAll();
  }

  #discard(worker: Worker): void {
    worker.terminate();
    this.#started--;
    this.#wakeAll();
  }

  // Every waiter looks again (one whose time is up leaves, and the next one takes the worker).
  #wakeAll(): void {
    for (const wake of [...this.#waiting]) wake();
  }
}
