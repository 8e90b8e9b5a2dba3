/**
 * A read whose result is shared: by the requests that ask while it runs, and by those that ask within a short
 * time after. `/metrics` at thousands of sites is megabytes of text: built once per request, a few scrapers at
 * once kept the thread busy for seconds, and every other page (and `/healthz`) waited past its deadline.
 *
 * @module
 */

/** One value, read at most once per `ttlMs` and by one read at a time; a failed read is not kept. */
export class SharedRead<T> {
  #kept: { at: number; value: T } | null = null;
  #reading: Promise<T> | null = null;

  constructor(private readonly ttlMs: number, private readonly now: () => number = Date.now) {}

  /** The value kept if it is fresh, else the read under way, else a new `read()`. */
  get(read: () => Promise<T>): Promise<T> {
    if (this.#kept !== null && this.now() - this.#kept.at < this.ttlMs) {
      return Promise.resolve(this.#kept.value);
    }
    this.#reading ??= read().then((value) => {
      this.#kept = { at: this.now(), value };
      return value;
    }).finally(() => this.#reading = null);
    return this.#reading;
  }
}
