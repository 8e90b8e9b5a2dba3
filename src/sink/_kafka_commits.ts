/**
 * The offsets the sink commits to Kafka, for lag tools only: the database holds the offsets that count.
 *
 * @module
 */
import type { Consumer } from "kafkajs";
import { deadline } from "../async.ts";
import type { Logger } from "../log.ts";

/** How long a commit of offsets to Kafka may take before the next one may start. */
const KAFKA_COMMIT_MS = 30_000;

/**
 * Offsets stored in the database and not yet committed to Kafka, sent at most once a second rather than once
 * per batch, and never waited for: an OffsetCommit goes to the group coordinator, and while that broker is
 * away kafkajs retries it for minutes, which held every batch (and so every partition) behind it in the
 * cluster test.
 */
export class KafkaCommits {
  readonly #pending = new Map<number, string>();
  #last = 0;
  #committing = false;

  constructor(private readonly topic: string, private readonly log: Logger) {}

  /** Notes that the partition is stored up to `offset` (the next offset to read). */
  stored(partition: number, offset: string): void {
    this.#pending.set(partition, offset);
  }

  /** Commits what is pending through `consumer`, unless a commit is under way or one was sent within a second. */
  commitNowAndThen(consumer: Consumer): void {
    if (this.#committing || Date.now() - this.#last < 1_000) return;
    const offsets = [...this.#pending].map(([partition, offset]) => ({
      topic: this.topic,
      partition,
      offset,
    }));
    this.#pending.clear();
    this.#last = Date.now();
    this.#committing = true;
    deadline(consumer.commitOffsets(offsets), KAFKA_COMMIT_MS).catch((error) => {
      this.log.debug("cannot commit offsets to Kafka (the database has them)", {
        error: (error as Error).message,
      });
    }).finally(() => this.#committing = false);
  }
}
