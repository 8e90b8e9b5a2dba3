/**
 * The scheduler's queue of due times: a binary min-heap of (due time, site index) pairs kept in two typed
 * arrays. At 20,000 sites a second the heap of objects it replaces spent most of its time on cache misses
 * (every level of a sift read another object); here a sift reads neighbouring numbers.
 *
 * @module
 */

/**
 * A fixed-capacity min-heap of due times, each carrying a non-negative integer id.
 *
 * @example
 * ```ts
 * const heap = new DueHeap(3);
 * heap.push(30, 0);
 * heap.push(10, 1);
 * heap.topDue; // 10
 * heap.topId; // 1
 * heap.replaceTop(40, 1); // site 1 is next due at 40: 30 (id 0) is now on top
 * ```
 */
export class DueHeap {
  readonly #due: Float64Array;
  readonly #id: Int32Array;
  #size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(
        `Cannot create due heap as 'capacity' must be a non-negative integer: current value is ${capacity}`,
      );
    }
    this.#due = new Float64Array(capacity);
    this.#id = new Int32Array(capacity);
  }

  /** Pairs in the heap. */
  get size(): number {
    return this.#size;
  }

  /** The earliest due time, or Infinity when empty. */
  get topDue(): number {
    return this.#size === 0 ? Infinity : this.#due[0]!;
  }

  /** The id of the earliest due time, or -1 when empty. */
  get topId(): number {
    return this.#size === 0 ? -1 : this.#id[0]!;
  }

  /** Adds a pair. Throws a RangeError when the heap is full. */
  push(due: number, id: number): void {
    if (this.#size === this.capacity) {
      throw new RangeError(`Cannot push onto the due heap: it is full at ${this.capacity} entries`);
    }
    const dues = this.#due;
    const ids = this.#id;
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (dues[parent]! <= due) break;
      dues[i] = dues[parent]!;
      ids[i] = ids[parent]!;
      i = parent;
    }
    dues[i] = due;
    ids[i] = id;
  }

  /** Removes the top pair and adds (`due`, `id`) in one sift: the scheduler's "ran it, next due at". */
  replaceTop(due: number, id: number): void {
    if (this.#size === 0) {
      this.push(due, id);
      return;
    }
    this.#siftDown(due, id, this.#size);
  }

  /** Removes the top pair (nothing when empty). */
  pop(): void {
    if (this.#size === 0) return;
    const last = --this.#size;
    if (last > 0) this.#siftDown(this.#due[last]!, this.#id[last]!, last);
  }

  /** Places (`due`, `id`) at the root's hole and sifts it down within the first `size` slots. */
  #siftDown(due: number, id: number, size: number): void {
    const dues = this.#due;
    const ids = this.#id;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && dues[right]! < dues[left]! ? right : left;
      if (dues[child]! >= due) break;
      dues[i] = dues[child]!;
      ids[i] = ids[child]!;
      i = child;
    }
    dues[i] = due;
    ids[i] = id;
  }
}
