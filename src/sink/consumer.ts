/**
 * The consumer-group member of `monitor sink`: decodes each Kafka batch and queues it (./write_queue.ts), whose
 * writers store one partition's consecutive batches in one transaction that also records the next offset of
 * the partition; seeks to the stored offsets on every assignment; retries a failed write with backoff (keeping
 * its group membership) until it is stored or the partition moves away (./batch_writer.ts); and reads a
 * partition again from the stored offset when a write would leave a hole (`OffsetGap`).
 *
 * It also watches itself: true lag per partition (./lag.ts, from high watermarks read on a timer by
 * ./watermarks.ts), and when a partition with lag stores nothing for the stall timeout it says so and swaps
 * its kafkajs consumer for a fresh one, which rejoins the group. kafkajs 2.2.4 can keep heartbeating a dead
 * group coordinator for minutes ("This is not the correct coordinator") while fetching nothing; a fresh
 * consumer finds the new coordinator at once.
 *
 * @module
 */
import type { Consumer, EachBatchPayload, Kafka } from "kafkajs";
import { deadline } from "../async.ts";
import type { DatabaseHandle } from "../db/handle.ts";
import { type Batch, OffsetGap } from "../db/batch.ts";
import { readOffsets } from "../db/writer.ts";
import type { Logger } from "../log.ts";
import type { Metric } from "../metrics.ts";
import { retrying } from "../db/retry.ts";
import { StateCache } from "../db/state_cache.ts";
import {
  decodeBatch,
  HEARTBEAT_SLICE_MS,
  mergeBatches,
  storeBatch,
  type StoreContext,
} from "./batch_writer.ts";
import { type QueuedBatch, WriteQueue } from "./write_queue.ts";
import { LagTracker } from "./lag.ts";
import { pollWatermarks } from "./watermarks.ts";
import { SinkCounters, type SinkStats } from "./stats.ts";
import { createGroupConsumer, SINK_FETCH, type SinkFetch } from "./group_consumer.ts";
import { KafkaCommits } from "./_kafka_commits.ts";
import { pastExpiredMessages } from "./_expired_messages.ts";
import { fixKafkajsStop } from "./_kafkajs_stop.ts";
import { fixKafkajsMembership, removeMember } from "./_kafkajs_membership.ts";
import { fixKafkajsLostBroker } from "./_kafkajs_lost_broker.ts";

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
/** How long the last commit of offsets to Kafka may hold a stopping sink. */
const KAFKA_CLOSE_COMMIT_MS = 2_000;

/**
 * A kafkajs consumer and the payload of the last batch it handed out, whose `heartbeat` and `isRunning` serve
 * every batch of that consumer. A queued batch keeps no payload of its own: kafkajs's payload functions are
 * closures over its whole batch (messages and buffers), which would stay in memory until the batch is written.
 */
interface BatchSource {
  readonly consumer: Consumer;
  latest: Pick<EachBatchPayload, "heartbeat" | "isRunning"> | null;
  /** The member id of its last join, to leave the group with when the consumer cannot. */
  memberId: string | null;
}

/** A decoded batch in the write queue, with the kafkajs consumer it came from. */
interface HandedBatch extends QueuedBatch {
  readonly batch: Batch;
  readonly source: BatchSource;
  /** The group generation it was fetched in (counted by this member's joins). */
  readonly epoch: number;
}

/** Whether `next` is the batch fetched right after `previous`, so that one transaction may hold both. */
function follows(previous: HandedBatch, next: HandedBatch): boolean {
  const fetchedFrom = next.batch.progress[0]!.fetchedFrom;
  return previous.epoch === next.epoch && previous.source === next.source &&
    fetchedFrom !== undefined && fetchedFrom === previous.batch.progress[0]!.nextOffset;
}

/** The consumer-group member that moves batches from Kafka into PostgreSQL. */
export class SinkConsumer {
  readonly #kafka: Kafka;
  readonly #tracker: LagTracker;
  /** Batches whose write is being retried: the database, not Kafka, is what holds the sink up then. */
  #retryingWrites = 0;
  readonly #commits: KafkaCommits;
  readonly #counters = new SinkCounters();
  readonly #fetch: SinkFetch;
  /** Cleared at every assignment: until then no other member writes this member's sites. */
  readonly #cache: StateCache;
  readonly #queue: WriteQueue<HandedBatch>;
  /** This member's joins: a batch fetched before the last one is not handed over. */
  #epoch = 0;

  constructor(
    kafka: Kafka,
    private readonly db: DatabaseHandle,
    private readonly options: SinkConsumerOptions,
  ) {
    this.#kafka = kafka;
    this.#fetch = options.fetch ?? SINK_FETCH;
    this.#tracker = new LagTracker(options.stallTimeoutMs);
    this.#commits = new KafkaCommits(options.topic, options.log);
    this.#cache = new StateCache(this.#fetch.stateCacheBytes);
    this.#queue = new WriteQueue<HandedBatch>({
      maxBatch: this.#fetch.maxBatch,
      maxHeld: this.#fetch.maxBatch * (this.#fetch.partitionsConsumedConcurrently + 1),
      writers: this.#fetch.partitionsConsumedConcurrently,
      write: (taken) => this.#write(taken),
      follows,
    });
    fixKafkajsStop();
    fixKafkajsMembership();
    fixKafkajsLostBroker();
  }

  /** Counters since the start, and the lag, for the metrics endpoint. */
  metrics(): Metric[] {
    return this.#counters.metrics(this.#tracker);
  }

  /** Why the sink is not healthy (a stalled partition), or null; for `/healthz`. */
  health(): string | null {
    return this.#tracker.healthReason(Date.now());
  }

  /** Counters since the last call. */
  takeStats(): SinkStats {
    return this.#counters.take(this.#tracker, this.#cache);
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
          this.#counters.stalled();
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
    const consumer = createGroupConsumer(this.#kafka, this.options.group, this.#fetch, stop);
    const source: BatchSource = { consumer, latest: null, memberId: null };
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (stop.aborted) {
        // A restart kafkajs had already begun when this consumer was replaced: leave again.
        deadline(consumer.disconnect(), STALLED_LEAVE_MS).catch(() => {});
        return;
      }
      source.memberId = event.payload.memberId;
      const partitions = event.payload.memberAssignment[topic] ?? [];
      log.info("joined the group", { group: this.options.group, partitions });
      this.#cache.clear();
      this.#commits.use(consumer, partitions);
      // Batches fetched before the join are fetched again from the stored offsets.
      this.#epoch++;
      this.#queue.drop(() => true);
      this.#tracker.assign(partitions, Date.now());
      this.#seekToStoredOffsets(consumer, partitions).catch((error) =>
        // Not fatal: Kafka's committed offsets trail the database's, and the writer skips what is stored.
        log.warn("cannot read stored offsets; starting from Kafka's", { error: (error as Error).message })
      );
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => this.#onBatchProcessed(event));
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
        // Decoding is all eachBatch does; the write queue's writers run the transactions side by side.
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.#handleBatch(source, payload),
      });
      await new Promise<void>((resolve) => {
        if (stop.aborted) resolve();
        stop.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    if (shutdown.aborted) {
      log.info("stopping: finishing the batch in hand");
      // What is stored so far reaches Kafka's offsets too, for lag tools; what the writers finish after this
      // is committed by the next member to own the partition.
      await this.#commits.close(KAFKA_CLOSE_COMMIT_MS);
      // Bounded: after a broker failure kafkajs can wait on a dead coordinator to leave the group.
      await deadline(consumer.disconnect(), SHUTDOWN_LEAVE_MS).catch((error) =>
        log.warn("did not leave the group in time; stopping anyway", { error: (error as Error).message })
      );
      await this.#queue.settled(SHUTDOWN_LEAVE_MS);
      return;
    }
    this.#commits.detach();
    // A stalled consumer may wait on a dead broker before it leaves the group, and the fresh one's join would
    // wait for it until its session timed out. So its member id leaves from a connection of its own, and it
    // stops in the background: its batches are fenced by the stored offsets if it ever wakes up.
    const stopping = deadline(consumer.disconnect(), STALLED_LEAVE_MS).catch((error) =>
      log.warn("the stalled consumer did not stop in time; abandoning it", {
        error: (error as Error).message,
      })
    );
    const left = source.memberId !== null &&
      await removeMember(this.#kafka, this.options.group, source.memberId);
    if (!left) await stopping;
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
      // Kafka's offsets catch up with the database's, which a member that stopped may have left behind.
      this.#commits.stored(partition, offset);
    }
  }

  /**
   * Decodes a batch and hands it to the write queue, then lets kafkajs fetch the next one. The batch's offset
   * is resolved only for kafkajs's fetch position: nothing is acknowledged before it is stored.
   */
  async #handleBatch(source: BatchSource, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const last = batch.messages.at(-1);
    if (last === undefined) return;
    source.latest = { heartbeat, isRunning };
    const epoch = this.#epoch;
    // What the queue holds bounds the sink's memory: wait for room, keeping the group membership. The batch is
    // decoded after the wait, so a full queue does not hold it twice (kafkajs's messages and the decoded checks).
    while (!this.#queue.hasRoom()) {
      if (!isRunning() || this.options.shutdown.aborted) return;
      await this.#queue.changed(HEARTBEAT_SLICE_MS);
      await heartbeat();
    }
    // Not handed over, not resolved: kafkajs fetches it again (after a rejoin, from the stored offsets).
    if (epoch !== this.#epoch || !isRunning() || isStale()) return;
    const fetchedOffset = (batch as { fetchedOffset?: unknown }).fetchedOffset;
    const toWrite = decodeBatch(
      this.options.group,
      batch,
      typeof fetchedOffset === "string" ? this.#vouchedFrom(batch.partition, fetchedOffset) : undefined,
    );
    // A message counts as one check, or as one per 512 bytes of it when larger (a dead letter keeps its bytes;
    // a check may carry long text), so that the queue's bound holds for large messages too.
    let bytes = 0;
    for (const message of batch.messages) bytes += message.value?.byteLength ?? 0;
    this.#queue.push({
      partition: batch.partition,
      size: Math.max(batch.messages.length, Math.ceil(bytes / 512)),
      batch: toWrite,
      source,
      epoch,
    });
    resolveOffset(batch.lastOffset());
  }

  /**
   * Where a batch fetched from `fetchedOffset` may say it was fetched from: before the offsets kafkajs passed
   * over just before it (a transaction's marker, aborted records), which hold nothing to store, so that a
   * batch after a marker the sink has not stored yet is not taken for a hole.
   */
  #vouchedFrom(partition: number, fetchedOffset: string): string {
    return this.#tracker.emptyBefore(partition, BigInt(fetchedOffset))?.toString() ?? fetchedOffset;
  }

  /**
   * kafkajs handles a fetched batch of only transaction markers and aborted records itself (eachBatch never
   * sees it) and moves past it: those offsets hold nothing to store, which the lag and the next batch's
   * vouching need to know, or a topic that ends with a marker would show lag 1, and stall, for ever.
   */
  #onBatchProcessed(
    event: {
      payload: { partition: number; batchSize: number; firstOffset: string | null; lastOffset: string };
    },
  ): void {
    const { partition, batchSize, firstOffset, lastOffset } = event.payload;
    if (batchSize !== 0 || firstOffset === null) return;
    const caughtUp = this.#tracker.passedOver(
      partition,
      BigInt(firstOffset),
      BigInt(lastOffset) + 1n,
      Date.now(),
    );
    if (caughtUp !== null) this.#commits.stored(partition, caughtUp.toString());
  }

  /** Stores batches the queue took together (one partition's, in order); see {@linkcode WriteQueue}. */
  async #write(taken: readonly HandedBatch[]): Promise<void> {
    const { source, epoch } = taken.at(-1)!;
    // Stale once this member rejoined: the join seeks to the stored offsets, and the batch is fetched again.
    const payload = {
      heartbeat: () => source.latest!.heartbeat(),
      isRunning: () => source.latest!.isRunning(),
      isStale: () => epoch !== this.#epoch,
    };
    const toWrite = mergeBatches(taken.map((handed) => handed.batch));
    const { partition, nextOffset, firstOffset } = toWrite.progress[0]!;
    const fetchedFrom = toWrite.progress[0]!.fetchedFrom ?? firstOffset;
    const context: StoreContext = {
      db: this.db,
      log: this.options.log,
      shutdown: this.options.shutdown,
      deadlineMs: this.options.deadlineMs,
      count: (result, checks) => this.#counters.stored(result, checks),
      retrying: (delta) => this.#retryingWrites += delta,
      cache: this.#cache,
    };
    try {
      let outcome = await storeBatch(toWrite, payload, context);
      const expired = outcome instanceof OffsetGap
        ? await pastExpiredMessages(
          { kafka: this.#kafka, topic: this.options.topic, tracker: this.#tracker, log: this.options.log },
          outcome,
          toWrite,
        )
        : null;
      if (expired !== null) outcome = await storeBatch(expired, payload, context);
      if (outcome === "stored") {
        this.#tracker.stored(partition, BigInt(nextOffset), Date.now());
        this.#commits.stored(partition, nextOffset);
        this.#counters.committed();
        return;
      }
      this.#readAgain(source, epoch, partition, outcome instanceof OffsetGap ? outcome.stored : fetchedFrom);
      if (outcome instanceof OffsetGap && !this.options.shutdown.aborted) {
        this.options.log.warn("a batch would skip messages never stored; reading the partition again", {
          partition,
          error: outcome.message,
        });
      }
    } catch (error) {
      // A heartbeat refused, say during a rebalance: the rejoin seeks to the stored offsets.
      this.#readAgain(source, epoch, partition, fetchedFrom);
      this.options.log.debug("batch abandoned", { partition, error: (error as Error).message });
    }
  }

  /**
   * After a write that stored nothing: drops what the same consumer queued of the partition in the same
   * generation (it would leave a hole), and, if that consumer still runs in this generation, has it fetch the
   * partition again from `offset`. A rejoin seeks to the stored offsets itself; a stopped consumer's partitions
   * are read again by the next one.
   */
  #readAgain(source: BatchSource, epoch: number, partition: number, offset: string): void {
    this.#queue.drop((handed) =>
      handed.partition === partition && handed.source === source && handed.epoch === epoch
    );
    if (this.options.shutdown.aborted || epoch !== this.#epoch || !source.latest?.isRunning()) return;
    try {
      source.consumer.seek({ topic: this.options.topic, partition, offset });
    } catch (error) {
      this.options.log.debug("cannot seek", { partition, error: (error as Error).message });
    }
  }
}
