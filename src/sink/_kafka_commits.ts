/**
 * The offsets the sink commits to Kafka, for lag tools only: the database holds the offsets that count.
 *
 * @module
 */
import type { Consumer } from "kafkajs";
import { deadline } from "../async.ts";
import type { Logger } from "../log.ts";

/** Offsets as kafkajs commits them. */
type Offsets = { topic: string; partition: number; offset: string }[];

/** How long a commit of offsets to Kafka may take before the next one may start. */
const KAFKA_COMMIT_MS = 30_000;
/** The least time between two commits. */
const COMMIT_EVERY_MS = 1_000;

/**
 * Offsets stored in the database and not yet committed to Kafka, sent at most once a second rather than once
 * per batch, and never waited for: an OffsetCommit goes to the group coordinator, and while that broker is
 * away kafkajs retries it for minutes, which held every batch (and so every partition) behind it in the
 * cluster test. What is stored within a second of the last commit is sent a second later, so Kafka's offsets
 * catch up with the database's when the topic goes quiet too (lag tools would show lag that is not there).
 */
export class KafkaCommits {
  readonly #pending = new Map<number, string>();
  #last = 0;
  #committing = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #consumer: Pick<Consumer, "commitOffsets"> | null = null;
  #owned = new Set<number>();
  /** The highest offset noted of each owned partition: Kafka's committed offsets never move back. */
  readonly #highest = new Map<number, bigint>();

  constructor(private readonly topic: string, private readonly log: Logger) {}

  /**
   * Commits through `consumer` from now on, for `partitions` only: the offsets pending for any other partition
   * are dropped (its new owner commits them, and a late commit from here could move them back).
   */
  use(consumer: Pick<Consumer, "commitOffsets">, partitions: readonly number[]): void {
    this.#consumer = consumer;
    this.#owned = new Set(partitions);
    for (const partition of [...this.#pending.keys(), ...this.#highest.keys()]) {
      if (this.#owned.has(partition)) continue;
      this.#pending.delete(partition);
      this.#highest.delete(partition);
    }
    this.#schedule();
  }

  /**
   * Stops committing through the consumer in use (it is being replaced), keeping what is pending for the next
   * one: a stopped kafkajs consumer drops a commit without an error.
   */
  detach(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#consumer = null;
  }

  /**
   * Notes that the partition is stored up to `offset` (the next offset to read), to be committed soon. An
   * offset below one noted before is passed over: a write that ends after a later one, or after the join's
   * reading of the database, may report where its own batch ended, below what the database holds.
   */
  stored(partition: number, offset: string): void {
    if (!this.#owned.has(partition)) return;
    const at = BigInt(offset);
    if (at <= (this.#highest.get(partition) ?? -1n)) return;
    this.#highest.set(partition, at);
    this.#pending.set(partition, offset);
    this.#schedule();
  }

  /** Commits what is pending now through the consumer in use, waiting at most `ms`; then commits no more. */
  async close(ms: number): Promise<void> {
    const consumer = this.#consumer;
    this.detach();
    if (consumer === null || this.#pending.size === 0) return;
    await this.#send(consumer, this.#take(), ms);
  }

  /** Commits now, or arms the timer for when a commit may start. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#committing || this.#consumer === null) return;
    if (this.#pending.size === 0) return;
    const wait = this.#last + COMMIT_EVERY_MS - Date.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, wait);
      return;
    }
    const consumer = this.#consumer;
    this.#last = Date.now();
    this.#committing = true;
    const offsets = this.#take();
    this.#send(consumer, offsets, KAFKA_COMMIT_MS).then((committed) => {
      if (committed) return;
      // Tried again with the next commit, unless a later offset of the partition came meanwhile.
      for (const { partition, offset } of offsets) {
        if (this.#owned.has(partition) && !this.#pending.has(partition)) this.#pending.set(partition, offset);
      }
    }).finally(() => {
      this.#committing = false;
      this.#schedule();
    });
  }

  /** Commits `offsets` through `consumer` within `ms`; resolves to whether Kafka took them. Never rejects. */
  async #send(consumer: Pick<Consumer, "commitOffsets">, offsets: Offsets, ms: number): Promise<boolean> {
    try {
      await deadline(consumer.commitOffsets(offsets), ms);
      return true;
    } catch (error) {
      this.log.debug("cannot commit offsets to Kafka (the database has them)", {
        error: (error as Error).message,
      });
      return false;
    }
  }

  #take(): Offsets {
    const offsets = [...this.#pending].map(([partition, offset]) => ({
      topic: this.topic,
      partition,
      offset,
    }));
    this.#pending.clear();
    return offsets;
  }
}
