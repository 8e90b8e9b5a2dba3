/**
 * Drains the outbox into Kafka: an idempotent kafkajs producer, acks from all in-sync replicas, key = site
 * name, gzip-compressed batches. A failed send puts its batch back at the front of the outbox and is retried
 * with backoff, so results wait out a broker outage (up to the outbox bound) and keep their order.
 *
 * A send that fails keeps its producer when the cause is one Kafka may recover from (a lost connection, a
 * timeout, a leader moving), and the same batch is sent again, unchanged, before anything else: kafkajs
 * rolls back the sequence numbers of a produce request that fails, so the copy carries the same producer id
 * and sequences, and a broker that had written the first copy before its answer was lost drops the second.
 * A new producer would have a new id, and the batch would land twice. Each message keeps the partition it was
 * first sent to for as long as it may be sent again on the same producer, so that partitions added to the
 * topic meanwhile cannot regroup a retried batch under sequences the broker has seen. The producer is
 * replaced after a non-retriable error (its idempotence session is broken, e.g. an unknown producer id) or
 * after {@linkcode KEPT_SESSION_ATTEMPTS} failed sends in a row; its batch then goes back to the outbox.
 *
 * When one broker answered and another did not, kafkajs has moved the answered partitions' sequences on, and
 * the copy writes those partitions again: a duplicate on the topic, which the sink stores once.
 *
 * A send that kafkajs reports as successful is verified too: the messages of every partition missing from
 * its `RecordMetadata` go back to the front of the outbox and are sent again (see ./acknowledged.ts for the
 * kafkajs defect this guards against), and counted as re-sent.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { CompressionTypes, type Kafka, type Message, Partitioners, type Producer } from "kafkajs";
import { Backoff, deadline, delay, isTimeout } from "../async.ts";
import type { Logger } from "../log.ts";
import type { Outbox } from "./outbox.ts";
import { missingPartitions, unacknowledged } from "./acknowledged.ts";
import { fixKafkajsSilentBroker } from "./_kafkajs_silent_broker.ts";

/**
 * The agent's request timeout: how long a send waits on a broker that does not answer before it drops that
 * broker and reads where the partitions are now (./_kafkajs_silent_broker.ts). Every partition's results wait
 * this long, since a send waits for all its brokers; Kafka fences a silent broker and moves its partitions in
 * about 9 s (`broker.session.timeout.ms`). kafkajs's default is 30 s.
 */
export const PUBLISHER_REQUEST_TIMEOUT_MS = 10_000;

/** Failed sends in a row after which the producer is replaced even when every error was retriable. */
export const KEPT_SESSION_ATTEMPTS = 8;

/** One message waiting to be published. */
export interface OutboxEntry {
  readonly key: string;
  readonly value: Uint8Array;
}

/** Options of {@linkcode Publisher}. */
export interface PublisherOptions {
  /** Most messages in one send. Default 2,000. */
  readonly batchSize?: number;
  /** How long to wait for more messages before sending a partial batch. Default 20 ms. */
  readonly lingerMs?: number;
  /** Runs before the first send on each new connection, e.g. to create the topic; a failure is retried. */
  readonly prepare?: () => Promise<void>;
}

/**
 * The outbox's consumer.
 *
 * @example
 * ```ts
 * import type { Kafka } from "kafkajs";
 * import type { Logger } from "../log.ts";
 * import type { Outbox } from "./outbox.ts";
 * declare const kafka: Kafka;
 * declare const outbox: Outbox<OutboxEntry>;
 * declare const log: Logger;
 * const publisher = new Publisher(kafka, "monitor.checks", outbox, log);
 * publisher.start();
 * // ... outbox.push({ key, value }) from the probes ...
 * await publisher.stop(10_000); // flush what is left, then disconnect
 * ```
 */
export class Publisher {
  #producer: Producer | null = null;
  #loop: Promise<void> | null = null;
  #published = 0;
  #resent = 0;
  /**
   * The batch taken out of the outbox and not yet acknowledged: under way, or held after a failed send to
   * be sent again, unchanged, on the same producer (between sends, non-empty only when held).
   */
  #inFlight: readonly OutboxEntry[] = [];
  /** The partition kafkajs's partitioner chose for each message of the send under way. */
  readonly #partitionOf = new Map<Message, number>();
  /** The outbox entry of each message of the send under way. */
  readonly #entryOf = new Map<Message, OutboxEntry>();
  /**
   * The partition each entry went to, while it may be sent again on the same producer. Weak: a pin is
   * forgotten with its entry, once the entry is acknowledged or dropped by a full outbox.
   */
  #pinned = new WeakMap<OutboxEntry, number>();
  /** Failed sends in a row on the current producer. */
  #sessionFailures = 0;
  #failures = 0;
  readonly #stopping = new AbortController();
  readonly #halt = new AbortController();
  readonly #backoff = new Backoff({ minTimeout: 250, maxTimeout: 10_000 });
  readonly #batchSize: number;
  readonly #lingerMs: number;
  readonly #prepare: (() => Promise<void>) | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly outbox: Outbox<OutboxEntry>,
    private readonly log: Logger,
    options: PublisherOptions = {},
  ) {
    this.#batchSize = options.batchSize ?? 2_000;
    this.#lingerMs = options.lingerMs ?? 20;
    this.#prepare = options.prepare;
    fixKafkajsSilentBroker();
  }

  /** Messages acknowledged by the broker so far. */
  get published(): number {
    return this.#published;
  }

  /** Messages sent again because Kafka's answer to a send that succeeded did not cover their partition. */
  get resent(): number {
    return this.#resent;
  }

  /** Results not yet acknowledged: waiting in the outbox or in a send under way. */
  get pending(): number {
    return this.outbox.size + this.#inFlight.length;
  }

  /** Failed send attempts so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Whether the last send attempt succeeded (or none was made yet). */
  get healthy(): boolean {
    return this.#backoff.attempts === 0;
  }

  /** Starts draining in the background. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Stops after publishing what the outbox holds, waiting at most `timeoutMs`, then disconnects.
   * Returns how many messages were left unpublished.
   */
  async stop(timeoutMs: number): Promise<number> {
    this.#stopping.abort();
    const loop = this.#loop ?? Promise.resolve();
    try {
      await deadline(loop, timeoutMs).catch(async (error) => {
        if (!isTimeout(error)) throw error;
        // A send in flight when the time is up cannot be cancelled; it gets one more second, then is
        // counted as undelivered (it may still arrive).
        this.#halt.abort();
        await deadline(loop, 1_000).catch((error) => {
          if (!isTimeout(error)) throw error;
        });
      });
    } finally {
      await this.#dropProducer();
    }
    return this.pending;
  }

  async #run(): Promise<void> {
    const halt = this.#halt.signal;
    while (!halt.aborted) {
      const held = this.#inFlight.length > 0;
      if (!held && this.outbox.size === 0) {
        if (this.#stopping.signal.aborted) return;
        await this.outbox.waitForItems(AbortSignal.any([this.#stopping.signal, halt]));
        continue;
      }
      if (!held && this.outbox.size < this.#batchSize && !this.#stopping.signal.aborted) {
        await delay(this.#lingerMs, { signal: halt }).catch(() => {});
      }
      const batch = held ? this.#inFlight : this.outbox.take(this.#batchSize);
      this.#inFlight = batch;
      try {
        const { unacked, partitions } = await this.#send(batch);
        this.#inFlight = [];
        this.#sessionFailures = 0;
        this.#published += batch.length - unacked.length;
        if (unacked.length > 0) {
          this.outbox.unshift(unacked);
          this.#resent += unacked.length;
          this.log.warn("Kafka acknowledged only part of a batch; sending the rest again", {
            partitions,
            messages: unacked.length,
          });
          await delay(this.#backoff.next(), { signal: halt }).catch(() => {});
          continue;
        }
        if (this.#backoff.attempts > 0) this.log.info("publishing again", { published: batch.length });
        this.#backoff.reset();
      } catch (error) {
        this.#failures++;
        const wait = this.#backoff.next();
        this.#sessionFailures++;
        const keep = this.#producer !== null && keepsSession(error) &&
          this.#sessionFailures < KEPT_SESSION_ATTEMPTS;
        if (!keep) {
          this.#inFlight = [];
          this.outbox.unshift(batch);
          await this.#dropProducer();
        }
        this.log.warn("cannot publish; will retry", {
          error: (error as Error).message,
          attempt: this.#backoff.attempts,
          retry_in_ms: wait,
          outbox: this.outbox.size,
          same_producer: keep,
        });
        // A halt ends the wait early; the loop condition then ends the loop.
        await delay(wait, { signal: halt }).catch(() => {});
      }
    }
  }

  /** Disconnects and forgets the producer; the next send starts a new idempotence session. */
  async #dropProducer(): Promise<void> {
    const producer = this.#producer;
    this.#producer = null;
    this.#sessionFailures = 0;
    this.#pinned = new WeakMap();
    if (producer !== null) await deadline(producer.disconnect(), 2_000).catch(() => {});
  }

  /** Sends a batch; returns its entries whose partitions Kafka did not acknowledge, and those partitions. */
  async #send(
    batch: readonly OutboxEntry[],
  ): Promise<{ unacked: OutboxEntry[]; partitions: number[] }> {
    if (this.#producer === null) {
      await this.#prepare?.();
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        // Murmur2 on the key, as the Java client: one site's results land in one partition whatever client
        // wrote them. Each choice is recorded, to check Kafka's answer against.
        createPartitioner: () => {
          const murmur2 = Partitioners.DefaultPartitioner();
          return (args) => {
            const entry = this.#entryOf.get(args.message);
            const partition = (entry === undefined ? undefined : this.#pinned.get(entry)) ?? murmur2(args);
            if (entry !== undefined) this.#pinned.set(entry, partition);
            this.#partitionOf.set(args.message, partition);
            return partition;
          };
        },
        allowAutoTopicCreation: false,
        retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
      });
      await producer.connect();
      this.#producer = producer;
    }
    const messages: Message[] = batch.map((entry) => ({
      key: entry.key,
      value: Buffer.from(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength),
    }));
    this.#partitionOf.clear();
    for (let i = 0; i < batch.length; i++) this.#entryOf.set(messages[i]!, batch[i]!);
    try {
      const metadata = await this.#producer.send({
        topic: this.topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages,
      });
      const partitionOf = (index: number) => this.#partitionOf.get(messages[index]!);
      return {
        unacked: unacknowledged(batch, partitionOf, metadata, this.topic),
        partitions: missingPartitions(messages.map((_, index) => partitionOf(index)), metadata, this.topic),
      };
    } finally {
      this.#partitionOf.clear();
      this.#entryOf.clear();
    }
  }
}

/**
 * Whether a failed send leaves the producer's idempotence session usable: the innermost cause (kafkajs wraps
 * the last error of its retries) is one kafkajs itself would retry. Non-retriable ones include Kafka's
 * OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID and INVALID_PRODUCER_EPOCH.
 */
export function keepsSession(error: unknown): boolean {
  let root = error;
  for (let depth = 0; depth < 10 && root instanceof Error && root.cause instanceof Error; depth++) {
    root = root.cause;
  }
  return root instanceof Error && (root as { retriable?: unknown }).retriable === true;
}
