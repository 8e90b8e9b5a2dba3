/**
 * The consumer-group member of `monitor sink`: moves each Kafka batch into PostgreSQL in one transaction that
 * also records the next offset of the partition, seeks to the stored offsets on every assignment, and retries
 * a failed write with backoff (keeping its group membership) until it is stored or the partition moves away.
 *
 * It also watches itself: true lag per partition (./lag.ts, from high watermarks read on a timer by
 * ./watermarks.ts), and when a partition with lag stores nothing for the stall timeout it says so and swaps
 * its kafkajs consumer for a fresh one, which rejoins the group. kafkajs 2.2.4 can keep heartbeating a dead
 * group coordinator for minutes ("This is not the correct coordinator") while fetching nothing; a fresh
 * consumer finds the new coordinator at once.
 *
 * @module
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from "kafkajs";
import { Backoff, deadline, delay } from "../async.ts";
import type { DatabaseHandle } from "../db/handle.ts";
import { type Batch, type DeadLetter, type IncomingCheck, readOffsets, writeBatch } from "../db/writer.ts";
import { Histogram } from "../histogram.ts";
import type { Logger } from "../log.ts";
import { decodeCheck } from "../message.ts";
import type { Metric } from "../metrics.ts";
import { isTransient, retrying } from "../db/retry.ts";
import { LagTracker } from "./lag.ts";
import { pollWatermarks } from "./watermarks.ts";
import { newStats, sinkMetrics, type SinkStats } from "./stats.ts";
import { fixKafkajsStop } from "./_kafkajs_stop.ts";

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
  /** A partition with lag that stores nothing this long is stalled: the consumer is replaced. */
  readonly stallTimeoutMs: number;
  /** How often the high watermarks are read. Default 5 s. */
  readonly watermarkEveryMs?: number;
  /** Fetch sizes; default {@linkcode SINK_FETCH}. */
  readonly fetch?: SinkFetch;
}

/** How long a stalled consumer gets to leave the group before it is abandoned. */
const STALLED_LEAVE_MS = 5_000;
/** How long the consumer gets to finish its batch and leave the group at shutdown. */
const SHUTDOWN_LEAVE_MS = 15_000;
/** How long a commit of offsets to Kafka may take before the next one may start. */
const KAFKA_COMMIT_MS = 30_000;

/** A message's key and value, copied out of kafkajs's buffers (which may be views of a larger one). */
function copyRaw(
  message: Pick<KafkaMessage, "key" | "value">,
): { key: Uint8Array | null; value: Uint8Array | null } {
  return {
    key: message.key === null || message.key === undefined ? null : new Uint8Array(message.key),
    value: message.value === null ? null : new Uint8Array(message.value),
  };
}

/** The consumer-group member that moves batches from Kafka into PostgreSQL. */
export class SinkConsumer {
  readonly #kafka: Kafka;
  readonly #tracker: LagTracker;
  /** Batches whose write is being retried: the database, not Kafka, is what holds the sink up then. */
  #retryingWrites = 0;
  readonly #pendingCommits = new Map<number, string>();
  #lastKafkaCommit = 0;
  #committing = false;
  #stats = newStats();
  readonly #totals = newStats();
  #latency = new Histogram();
  readonly #fetch: SinkFetch;

  constructor(
    kafka: Kafka,
    private readonly db: DatabaseHandle,
    private readonly options: SinkConsumerOptions,
  ) {
    this.#kafka = kafka;
    this.#fetch = options.fetch ?? SINK_FETCH;
    this.#tracker = new LagTracker(options.stallTimeoutMs);
    fixKafkajsStop();
  }

  /** A kafkajs consumer; once `retired` aborts, it never restarts itself after a crash. */
  #createConsumer(retired: AbortSignal): Consumer {
    const options = this.options;
    return this.#kafka.consumer({
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
        // kafkajs decides on a restart after its own disconnect, so a crash during our disconnect would
        // otherwise bring a replaced consumer back as a second member of the group.
        restartOnFailure: () => Promise.resolve(!retired.aborted),
      },
    });
  }

  /** Counters since the start, and the lag, for the metrics endpoint. */
  metrics(): Metric[] {
    return sinkMetrics(this.#totals, this.#tracker);
  }

  /** Why the sink is not healthy (a stalled partition), or null; for `/healthz`. */
  health(): string | null {
    return this.#tracker.healthReason(Date.now());
  }

  /** Counters since the last call. */
  takeStats(): SinkStats {
    const stats = {
      ...this.#stats,
      lag: this.#tracker.totalLag(),
      partition_lag: [...this.#tracker.lag()].map(([partition, lag]) => `${partition}:${lag}`).join(","),
      latency_p99_ms: this.#latency.percentile(99),
    };
    this.#stats = { ...newStats(), last_commit: stats.last_commit };
    this.#latency = new Histogram();
    return stats;
  }

  /**
   * Consumes until the shutdown signal aborts, then finishes or abandons the batch in hand and leaves.
   * A stalled consumer is replaced by a fresh one meanwhile.
   */
  async run(): Promise<void> {
    const { log, shutdown, topic } = this.options;
    const polling = pollWatermarks(this.#kafka, (marks) => this.#tracker.watermarks(marks, Date.now()), {
      topic,
      everyMs: this.options.watermarkEveryMs ?? 5_000,
      log,
      signal: shutdown,
    });
    try {
      while (!shutdown.aborted) {
        const stalled = new AbortController();
        const watch = setInterval(() => {
          const now = Date.now();
          if (this.#retryingWrites > 0) this.#tracker.pause(now);
          const stalls = this.#tracker.recoveryDue(now);
          if (stalls.length === 0) return;
          log.warn("consumer stalled: replacing it with a fresh one, which rejoins the group", {
            partitions: stalls.map((stall) => `${stall.partition}:${stall.lag}`).join(","),
            stalled_s: Math.round(Math.min(...stalls.map((stall) => stall.forMs)) / 1_000),
          });
          this.#stats.stalls++;
          this.#totals.stalls++;
          stalled.abort();
        }, 1_000);
        try {
          await this.#runConsumer(stalled.signal);
        } finally {
          clearInterval(watch);
        }
      }
    } finally {
      await polling;
    }
  }

  /** Runs one kafkajs consumer until shutdown or until `stalled` aborts. */
  async #runConsumer(stalled: AbortSignal): Promise<void> {
    const { log, shutdown, topic } = this.options;
    const stop = AbortSignal.any([shutdown, stalled]);
    const consumer = this.#createConsumer(stop);
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (stop.aborted) {
        // A restart kafkajs had already begun when this consumer was replaced: leave again.
        deadline(consumer.disconnect(), STALLED_LEAVE_MS).catch(() => {});
        return;
      }
      const partitions = event.payload.memberAssignment[topic] ?? [];
      log.info("joined the group", { group: this.options.group, partitions });
      this.#tracker.assign(partitions, Date.now());
      this.#seekToStoredOffsets(consumer, partitions).catch((error) =>
        // Not fatal: Kafka's committed offsets trail the database's, and the writer skips what is stored.
        log.warn("cannot read stored offsets; starting from Kafka's", { error: (error as Error).message })
      );
    });
    consumer.on(consumer.events.CRASH, (event) => {
      log.warn("consumer crashed", {
        error: event.payload.error.message,
        restart: event.payload.restart,
      });
    });
    // Kafka may be down at start like at any other time: wait for it, except for refused credentials.
    await retrying(log, stop, "connect to Kafka", async () => {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
    }, (error) => (error as Error).name !== "KafkaJSSASLAuthenticationError");
    if (!stop.aborted) {
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.#fetch.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.#handleBatch(consumer, payload),
      });
      await new Promise<void>((resolve) => {
        if (stop.aborted) resolve();
        stop.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    if (shutdown.aborted) {
      log.info("stopping: finishing the batch in hand");
      // Bounded: after a broker failure kafkajs can wait on a dead coordinator to leave the group.
      await deadline(consumer.disconnect(), SHUTDOWN_LEAVE_MS).catch((error) =>
        log.warn("did not leave the group in time; stopping anyway", { error: (error as Error).message })
      );
      return;
    }
    // A stalled consumer may wait on a dead coordinator to leave the group; its batches are fenced by the
    // stored offsets if it ever wakes up, so it gets a few seconds and is then left behind.
    await deadline(consumer.disconnect(), STALLED_LEAVE_MS).catch((error) =>
      log.warn("the stalled consumer did not leave the group; abandoning it", {
        error: (error as Error).message,
      })
    );
  }

  async #seekToStoredOffsets(consumer: Consumer, partitions: readonly number[]): Promise<void> {
    const { group, topic, deadlineMs } = this.options;
    const stored = await this.db.run("read offsets", (sql) => readOffsets(sql, group, topic), deadlineMs);
    const now = Date.now();
    for (const partition of partitions) {
      const offset = stored.get(partition);
      if (offset === undefined) continue;
      consumer.seek({ topic, partition, offset });
      this.#tracker.stored(partition, BigInt(offset), now);
    }
  }

  async #handleBatch(consumer: Consumer, payload: EachBatchPayload): Promise<void> {
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
    try {
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
          if (backoff.attempts === 0) this.#retryingWrites++;
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
    } finally {
      if (backoff.attempts > 0) this.#retryingWrites--;
    }
    resolveOffset(last.offset);
    this.#tracker.stored(batch.partition, BigInt(nextOffset), Date.now());
    this.#pendingCommits.set(batch.partition, nextOffset);
    this.#stats.last_commit = new Date().toISOString();
    this.#commitToKafkaNowAndThen(consumer);
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
  // most once a second rather than once per batch, and never waited for: an OffsetCommit goes to the group
  // coordinator, and while that broker is away kafkajs retries it for minutes, which held every batch
  // (and so every partition) behind it in the cluster test.
  #commitToKafkaNowAndThen(consumer: Consumer): void {
    if (this.#committing || Date.now() - this.#lastKafkaCommit < 1_000) return;
    const offsets = [...this.#pendingCommits].map(([partition, offset]) => ({
      topic: this.options.topic,
      partition,
      offset,
    }));
    this.#pendingCommits.clear();
    this.#lastKafkaCommit = Date.now();
    this.#committing = true;
    deadline(consumer.commitOffsets(offsets), KAFKA_COMMIT_MS).catch((error) => {
      this.options.log.debug("cannot commit offsets to Kafka (the database has them)", {
        error: (error as Error).message,
      });
    }).finally(() => this.#committing = false);
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
