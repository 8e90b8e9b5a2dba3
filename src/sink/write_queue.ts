/**
 * The decoded batches waiting for PostgreSQL, and the writers that store them. The consumer hands a batch
 * over as soon as it is decoded, so kafkajs fetches the next one while this one is written (kafkajs fetches
 * again only when every batch of its last fetch is handled). A writer takes every batch its partition has
 * queued, up to `maxBatch` checks, into one transaction: under a backlog the transactions grow, which matters
 * because each site's state rows are written once per transaction whatever its number of checks; a quiet
 * topic is written batch by batch as it comes.
 *
 * What the queue holds (queued and being written) is bounded by `maxHeld` checks, which bounds the sink's
 * memory: the consumer waits for room before it hands over another batch. One partition is written by one
 * writer at a time, in the order its batches came. Pure: no Kafka, no database (tests/write_queue_test.ts).
 *
 * @module
 */

/** What the queue needs of a batch. */
export interface QueuedBatch {
  readonly partition: number;
  /** What it costs to hold and to write, in checks (see the consumer for how a large message counts). */
  readonly size: number;
}

/** Options of {@linkcode WriteQueue}. */
export interface WriteQueueOptions<T extends QueuedBatch> {
  /** Most checks a writer takes into one transaction (a single batch larger than this is taken alone). */
  readonly maxBatch: number;
  /** Most checks held, queued and being written, before {@linkcode WriteQueue.hasRoom} says no. */
  readonly maxHeld: number;
  /** Transactions at once, each of its own partition. */
  readonly writers: number;
  /** Stores the batches taken together (in order, one partition). Must not reject. */
  readonly write: (batches: readonly T[]) => Promise<void>;
  /** Whether `next` may join the transaction of `previous` (same partition, the one after it). */
  readonly follows: (previous: T, next: T) => boolean;
}

/** The queue of decoded batches and its writers; see the module documentation. */
export class WriteQueue<T extends QueuedBatch> {
  #queued: T[] = [];
  readonly #busy = new Set<number>();
  #held = 0;
  #writing = 0;
  #wakeups: (() => void)[] = [];

  constructor(private readonly options: WriteQueueOptions<T>) {
    for (const [name, value] of Object.entries({ ...options })) {
      if (typeof value === "number" && (!Number.isInteger(value) || value < 1)) {
        throw new RangeError(
          `Cannot create write queue as '${name}' must be a positive integer: got ${value}`,
        );
      }
    }
  }

  /** Checks held, queued and being written. */
  get held(): number {
    return this.#held;
  }

  /** Batches waiting for a writer. */
  get queued(): number {
    return this.#queued.length;
  }

  /** Calls of {@linkcode changed} still waiting. */
  get waiting(): number {
    return this.#wakeups.length;
  }

  /** Whether another batch may be handed over. */
  hasRoom(): boolean {
    return this.#held < this.options.maxHeld;
  }

  /** Resolves when something leaves the queue (room may have been made), or after `ms`. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeups = this.#wakeups.filter((wakeup) => wakeup !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeups.push(done);
    });
  }

  /** Queues a batch and starts a writer if one is free. */
  push(batch: T): void {
    this.#queued.push(batch);
    this.#held += batch.size;
    this.#start();
  }

  /** Drops the batches still waiting that `matches` picks (batches being written are not touched); returns how many. */
  drop(matches: (batch: T) => boolean): number {
    const keep: T[] = [];
    for (const batch of this.#queued) {
      if (matches(batch)) this.#held -= batch.size;
      else keep.push(batch);
    }
    const dropped = this.#queued.length - keep.length;
    this.#queued = keep;
    if (dropped > 0) this.#wake();
    return dropped;
  }

  /** Resolves when no writer is running, or after `ms`. */
  async settled(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.#writing > 0 && Date.now() < until) await this.changed(until - Date.now());
  }

  #start(): void {
    while (this.#writing < this.options.writers) {
      const taken = this.#take();
      if (taken === null) return;
      const partition = taken[0]!.partition;
      const size = taken.reduce((sum, batch) => sum + batch.size, 0);
      this.#busy.add(partition);
      this.#writing++;
      this.options.write(taken).finally(() => {
        this.#busy.delete(partition);
        this.#writing--;
        this.#held -= size;
        this.#wake();
        this.#start();
      });
    }
  }

  /** The oldest waiting batch whose partition is not being written, with the ones that may follow it. */
  #take(): T[] | null {
    const first = this.#queued.findIndex((batch) => !this.#busy.has(batch.partition));
    if (first < 0) return null;
    const head = this.#queued[first]!;
    const taken = [head];
    let size = head.size;
    for (const batch of this.#queued.slice(first + 1)) {
      if (batch.partition !== head.partition) continue;
      if (size + batch.size > this.options.maxBatch || !this.options.follows(taken.at(-1)!, batch)) break;
      taken.push(batch);
      size += batch.size;
    }
    const chosen = new Set(taken);
    this.#queued = this.#queued.filter((batch) => !chosen.has(batch));
    return taken;
  }

  #wake(): void {
    for (const wake of [...this.#wakeups]) wake();
  }
}
