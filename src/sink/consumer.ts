/**
 * The consumer-group member of `monitor sink`: moves each Kafka batch into PostgreSQL in one transaction that
 * also records the next offset of the partition, seeks to the stored offsets on every assignment, and retries
 * a failed write with backoff (keeping its group membership) until it is stored or the partition moves away.
 *
 * @module
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from "kafkajs";
import { Backoff, delay } from "../async.ts";
import type { DatabaseHandle } from "../db/handle.ts";
import { type Batch, type DeadLetter, type IncomingCheck, readOffsets, writeBatch } from "../db/writer.ts";
import { Histogram } from "../histogram.ts";
import type { Logger } from "../log.ts";
import { decodeCheck } from "../message.ts";
import type { Metric } from "../metrics.ts";
import { isTransient, retrying } from "../db/retry.ts";

const HEARTBEAT_SLICE_MS = 2_000;

/**
 * How the sink fetches. These sizes, not the backlog, bound its memory: kafkajs decodes a whole fetch response
 * (at most `maxBytes` of gzip-compressed records, about 16,000 checks per MiB) into message objects before it
 * hands out the batches, each batch is held until its transaction commits, and V8 lets the garbage of each grow
 * the old generation for a while. Draining 300,000 checks (bench/sink/memory.ts): 16 MiB per fetch and 1 MiB
 * per partition peaked at 716-756 MiB RSS; 1 MiB and 512 KiB at 310 MiB with the same CPU per check; smaller
 * batches cost more CPU in PostgreSQL (128 KiB per partition: 2.2 times as much per check, at 208 MiB). Three
 * batches at once let decoding one overlap writing another; each is still one transaction with its own
 * partition's offsets, kafkajs never hands out two batches of one partition at once, and one site's checks stay
 * in one partition, so concurrent batches touch different rows.
 */
export const SINK_FETCH = {
  maxWaitTimeInMs: 100,
  maxBytesPerPartition: 512 * 1024,
  maxBytes: 1024 * 1024,
  partitionsConsumedConcurrently: 3,
} as const;

/** How much the consumer fetches and holds at once; together they bound the sink's memory (README). */
export interface SinkFetch {
  /** Most bytes (compressed, as stored) of one fetch response from one broker. */
  readonly maxBytes: number;
  /** Most bytes of one partition in one fetch response: about the size of one batch, one transaction. */
  readonly maxBytesPerPartition: number;
  /** Batches decoded and written at once (each of its own partition). */
  readonly partitionsConsumedConcurrently: number;
  /** How long the broker waits for data before answering a fetch. */
  readonly maxWaitTimeInMs: number;
}

/** Options of {@linkcode SinkConsumer}. */
export interface SinkConsumerOptions {
  readonly group: string;
  readonly topic: string;
  readonly log: Logger;
  readonly shutdown: AbortSignal;
  /** How long one database call may take before the pool is replaced and the call retried. */
  readonly deadlineMs: number;
  /** Fetch sizes; default {@linkcode SINK_FETCH}. */
  readonly fetch?: SinkFetch;
}

/** A message's key and value, copied out of kafkajs's buffers (which may be views of a larger one). */
function copyRaw(
  message: Pick<KafkaMessage, "key" | "value">,
): { key: Uint8Array | null; value: Uint8Array | null } {
  return {
    key: message.key === null || message.key === undefined ? null : new Uint8Array(message.key),
    value: message.value === null ? null : new Uint8Array(message.value),
  };
}

/** Counters for the summary line. */
interface SinkStats extends Record<string, unknown> {
  stored: number;
  duplicates: number;
  skipped: number;
  dead_letters: number;
  batches: number;
  lag: number;
  last_commit: string | null;
  latency_p99_ms: number;
}

/** The consumer-group member that moves batches from Kafka into PostgreSQL. */
export class SinkConsumer {
  readonly #consumer: Consumer;
  readonly #lag = new Map<number, number>();
  readonly #pendingCommits = new Map<number, string>();
  #lastKafkaCommit = 0;
  #stats = newStats();
  readonly #totals = newStats();
  #latency = new Histogram();
  readonly #fetch: SinkFetch;

  constructor(
    kafka: Kafka,
    private readonly db: DatabaseHandle,
    private readonly options: SinkConsumerOptions,
  ) {
    this.#fetch = options.fetch ?? SINK_FETCH;
    this.#consumer = kafka.consumer({
      groupId: options.group,
      // A crashed member holds its partitions until this runs out: short enough for quick failover,
      // long enough to ride out a pause.
      sessionTimeout: 20_000,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: this.#fetch.maxWaitTimeInMs,
      maxBytesPerPartition: this.#fetch.maxBytesPerPartition,
      maxBytes: this.#fetch.maxBytes,
      allowAutoTopicCreation: false,
      retry: {
        initialRetryTime: 300,
        maxRetryTime: 15_000,
        retries: 8,
        restartOnFailure: () => Promise.resolve(true),
      },
    });
  }

  /** Counters since the start, for the metrics endpoint. */
  metrics(): Metric[] {
    const totals = this.#totals;
    const counter = (name: string, help: string, value: number): Metric => ({
      name,
      help,
      type: "counter",
      value,
    });
    return [
      counter("monitor_sink_checks_stored_total", "Checks inserted.", totals.stored),
      counter("monitor_sink_duplicates_total", "Checks whose id was already stored.", totals.duplicates),
      counter(
        "monitor_sink_skipped_total",
        "Messages below the stored offsets (redelivered).",
        totals.skipped,
      ),
      counter("monitor_sink_dead_letters_total", "Messages stored in dead_letters.", totals.dead_letters),
      counter("monitor_sink_batches_total", "Batches committed.", totals.batches),
      {
        name: "monitor_sink_consumer_lag",
        help: "Messages behind the end of the assigned partitions, as of the last batch.",
        type: "gauge",
        value: [...this.#lag.values()].reduce((sum, lag) => sum + lag, 0),
      },
    ];
  }

  /** Counters since the last call. */
  takeStats(): SinkStats {
    const stats = {
      ...this.#stats,
      lag: [...this.#lag.values()].reduce((sum, lag) => sum + lag, 0),
      latency_p99_ms: this.#latency.percentile(99),
    };
    this.#stats = { ...newStats(), last_commit: stats.last_commit };
    this.#latency = new Histogram();
    return stats;
  }

  /** Consumes until the shutdown signal aborts, then finishes or abandons the batch in hand and leaves. */
  async run(): Promise<void> {
    const { log, shutdown, topic } = this.options;
    const consumer = this.#consumer;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const partitions = event.payload.memberAssignment[topic] ?? [];
      log.info("joined the group", { group: this.options.group, partitions });
      this.#seekToStoredOffsets(partitions).catch((error) =>
        // Not fatal: Kafka's committed offsets trail the database's, and the writer skips what is stored.
        log.warn("cannot read stored offsets; starting from Kafka's", { error: (error as Error).message })
      );
    });
    consumer.on(consumer.events.CRASH, (event) => {
      log.warn("consumer crashed; restarting", {
        error: event.payload.error.message,
        restart: event.payload.restart,
      });
    });
    // Kafka may be down at start like at any other time: wait for it, except for refused credentials.
    await retrying(log, shutdown, "connect to Kafka", async () => {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
    }, (error) => (error as Error).name !== "KafkaJSSASLAuthenticationError");
    if (shutdown.aborted) {
      await consumer.disconnect();
      return;
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#fetch.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.#handleBatch(payload),
    });
    await new Promise<void>((resolve) => {
      if (shutdown.aborted) resolve();
      shutdown.addEventListener("abort", () => resolve(), { once: true });
    });
    log.info("stopping: finishing the batch in hand");
    await consumer.disconnect();
  }

  async #seekToStoredOffsets(partitions: readonly number[]): Promise<void> {
    const { group, topic, deadlineMs } = this.options;
    const stored = await this.db.run("read offsets", (sql) => readOffsets(sql, group, topic), deadlineMs);
    for (const partition of partitions) {
      const offset = stored.get(partition);
      if (offset !== undefined) this.#consumer.seek({ topic: this.options.topic, partition, offset });
    }
  }

  async #handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    const { log, shutdown } = this.options;
    const last = batch.messages.at(-1);
    if (last === undefined) return;
    const checks: IncomingCheck[] = [];
    const deadLetters: DeadLetter[] = [];
    for (const message of batch.messages) {
      try {
        // kafkajs's Buffer is a Uint8Array: decoded in place, copied only for a dead letter.
        checks.push({
          partition: batch.partition,
          offset: message.offset,
          check: decodeCheck(message.value),
        });
      } catch (error) {
        deadLetters.push({
          partition: batch.partition,
          offset: message.offset,
          ...copyRaw(message),
          error: (error as Error).message,
        });
      }
    }
    const nextOffset = (BigInt(last.offset) + 1n).toString();
    const toWrite: Batch = {
      group: this.options.group,
      topic: batch.topic,
      checks,
      deadLetters,
      progress: [{ partition: batch.partition, firstOffset: batch.messages[0]!.offset, nextOffset }],
    };
    const backoff = new Backoff({ minTimeout: 250, maxTimeout: 10_000 });
    for (;;) {
      // A batch of a partition this member no longer owns is left to its new owner; stored offsets fence it.
      if (!isRunning() || isStale() || shutdown.aborted) return;
      try {
        if (backoff.attempts > 0 && backoff.attempts % 3 === 0) {
          // The same batch keeps failing with the database up: find the message that the database refuses.
          await this.#writeOneByOne(toWrite, batch.messages);
        } else {
          this.#count(await heartbeating(this.#write(toWrite), heartbeat), checks);
        }
        if (backoff.attempts > 0) log.info("database writes resumed", { attempts: backoff.attempts });
        break;
      } catch (error) {
        if (shutdown.aborted) return; // abandoned, not stored: nothing is acknowledged
        const wait = backoff.next();
        log.warn("cannot store a batch; will retry", {
          error: (error as Error).message,
          code: (error as { code?: unknown }).code,
          partition: batch.partition,
          offset: batch.messages[0]!.offset,
          attempt: backoff.attempts,
          retry_in_ms: wait,
        });
        // Heartbeats keep the group membership while the database is away (kafkajs sends them only when
        // asked); heartbeat() throws when a rebalance is under way, which abandons this batch.
        for (let waited = 0; waited < wait && !shutdown.aborted; waited += HEARTBEAT_SLICE_MS) {
          await delay(Math.min(HEARTBEAT_SLICE_MS, wait - waited), { signal: shutdown }).catch(() => {});
          await heartbeat();
        }
      }
    }
    resolveOffset(last.offset);
    this.#lag.set(batch.partition, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(nextOffset))));
    this.#pendingCommits.set(batch.partition, nextOffset);
    this.#stats.last_commit = new Date().toISOString();
    await this.#commitToKafkaNowAndThen();
  }

  // Writes each message in a transaction of its own; one that the database refuses for its data (not for
  // being unreachable) goes to the dead-letter table with the database's error, and the rest are stored.
  async #writeOneByOne(whole: Batch, messages: readonly KafkaMessage[]): Promise<void> {
    const raw = new Map(messages.map((message) => [message.offset, message]));
    const items = [
      ...whole.checks.map((check) => ({ offset: check.offset, check, dead: null })),
      ...whole.deadLetters.map((dead) => ({ offset: dead.offset, check: null, dead })),
    ].sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    for (const item of items) {
      const progress = [{
        partition: item.check?.partition ?? item.dead!.partition,
        firstOffset: item.offset,
        nextOffset: (BigInt(item.offset) + 1n).toString(),
      }];
      const single: Batch = {
        ...whole,
        checks: item.check ? [item.check] : [],
        deadLetters: item.dead ? [item.dead] : [],
        progress,
      };
      try {
        this.#count(await this.#write(single), single.checks);
      } catch (error) {
        if (isTransient(error) || item.check === null) throw error;
        const { check } = item;
        this.options.log.warn("the database refused a check; moved to the dead-letter table", {
          error: (error as Error).message,
          partition: check.partition,
          offset: check.offset,
        });
        const refused: DeadLetter = {
          partition: check.partition,
          offset: check.offset,
          ...copyRaw(raw.get(check.offset) ?? { key: null, value: null }),
          error: `Cannot store check: the database refused it: ${(error as Error).message}`,
        };
        this.#count(await this.#write({ ...single, checks: [], deadLetters: [refused] }), []);
      }
    }
  }

  #write(batch: Batch): ReturnType<typeof writeBatch> {
    return this.db.run("store a batch", (sql) => writeBatch(sql, batch), this.options.deadlineMs);
  }

  #count(result: Awaited<ReturnType<typeof writeBatch>>, checks: readonly IncomingCheck[]): void {
    for (const stats of [this.#stats, this.#totals]) {
      stats.stored += result.stored;
      stats.duplicates += result.duplicates;
      stats.skipped += result.skipped;
      stats.dead_letters += result.deadLetters;
      stats.batches++;
    }
    const now = Date.now();
    for (const { check } of checks) {
      this.#latency.record(now - Date.parse(check.started_at) - check.duration_ms);
    }
  }

  // Kafka's committed offsets are for lag tools only (the database holds the truth), so they are sent at
  // most once a second rather than once per batch.
  async #commitToKafkaNowAndThen(): Promise<void> {
    if (Date.now() - this.#lastKafkaCommit < 1_000) return;
    const offsets = [...this.#pendingCommits].map(([partition, offset]) => ({
      topic: this.options.topic,
      partition,
      offset,
    }));
    this.#pendingCommits.clear();
    this.#lastKafkaCommit = Date.now();
    try {
      await this.#consumer.commitOffsets(offsets);
    } catch (error) {
      this.options.log.debug("cannot commit offsets to Kafka (the database has them)", {
        error: (error as Error).message,
      });
    }
  }
}

/**
 * Awaits `work` while sending heartbeats (kafkajs sends them only when asked), so that a database call up to
 * its deadline does not outlast the session timeout. A heartbeat refused during a rebalance is ignored: the
 * batch's loop sees the rebalance, and the stored offsets fence a write that finishes late.
 */
async function heartbeating<T>(work: Promise<T>, heartbeat: () => Promise<void>): Promise<T> {
  const beating = setInterval(() => heartbeat().catch(() => {}), HEARTBEAT_SLICE_MS);
  try {
    return await work;
  } finally {
    clearInterval(beating);
  }
}

function newStats(): SinkStats {
  return {
    stored: 0,
    duplicates: 0,
    skipped: 0,
    dead_letters: 0,
    batches: 0,
    lag: 0,
    last_commit: null,
    latency_p99_ms: 0,
  };
}
