/**
 * The bounded queue between probing and publishing: probing never waits on Kafka. Past the bound the
 * oldest entries are dropped and counted: an agent cut off from Kafka keeps its newest results.
 *
 * @module
 */

/**
 * A bounded first-in-first-out queue that drops its oldest entries when full.
 *
 * @example
 * ```ts
 * const outbox = new Outbox<string>(2);
 * outbox.push("a"); outbox.push("b"); outbox.push("c"); // "a" dropped
 * outbox.take(10); // ["b", "c"]
 * outbox.dropped; // 1
 * ```
 */
export class Outbox<T> {
  #ring: (T | undefined)[];
  #head = 0;
  #size = 0;
  #dropped = 0;
  #waiters: (() => void)[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot create outbox as 'capacity' must be a positive integer: current value is ${capacity}`,
      );
    }
    this.#ring = new Array(capacity);
  }

  /** Entries waiting. */
  get size(): number {
    return this.#size;
  }

  /** Entries dropped since creation because the outbox was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Adds an entry at the back, dropping the oldest when full. */
  push(item: T): void {
    if (this.#size === this.capacity) {
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.capacity;
      this.#size--;
      this.#dropped++;
    }
    this.#ring[(this.#head + this.#size) % this.capacity] = item;
    this.#size++;
    this.#wake();
  }

  /**
   * Puts entries that could not be delivered back at the front, in their order. Where they no longer fit,
   * the oldest of them are dropped and counted.
   */
  unshift(items: readonly T[]): void {
    const room = this.capacity - this.#size;
    const kept = items.length > room ? items.slice(items.length - room) : items;
    this.#dropped += items.length - kept.length;
    for (let i = kept.length - 1; i >= 0; i--) {
      this.#head = (this.#head - 1 + this.capacity) % this.capacity;
      this.#ring[this.#head] = kept[i];
      this.#size++;
    }
    if (kept.length > 0) this.#wake();
  }

  /** Removes and returns up to `max` entries from the front. */
  take(max: number): T[] {
    const count = Math.min(max, this.#size);
    const items = new Array<T>(count);
    for (let i = 0; i < count; i++) {
      items[i] = this.#ring[this.#head] as T;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.capacity;
    }
    this.#size -= count;
    return items;
  }

  /** Removes and returns the front entry, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#ring[this.#head];
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
    return item;
  }

  /** Resolves when the outbox holds at least one entry, or when `signal` aborts. */
  waitForItems(signal?: AbortSignal): Promise<void> {
    if (this.#size > 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.push(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
