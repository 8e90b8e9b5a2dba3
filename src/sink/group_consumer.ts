/**
 * The kafkajs consumer the sink runs as a member of its consumer group, and the fetch settings that, with the
 * write queue's, bound the sink's memory.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import { STATE_CACHE_BYTES } from "../db/state_cache.ts";

/**
 * How the sink fetches and writes. These sizes, not the backlog, bound its memory: kafkajs decodes a whole
 * fetch response (at most `maxBytes` of gzip-compressed records, about 16,000 checks per MiB) into message
 * objects, the sink decodes each batch into checks and hands it to the write queue (./write_queue.ts), which
 * holds at most `maxBatch` checks per writer and one more transaction's worth, and V8 lets the garbage of each
 * grow the old generation for a while. Small fetches keep kafkajs's share small; the queue lets transactions
 * grow past one fetch under a backlog (each site's state rows are written once per transaction, so a bigger
 * transaction costs less per check) and lets kafkajs fetch while the database writes. Each transaction is
 * one partition's, with that partition's offsets; one site's checks stay in one partition, so the writers
 * touch different rows.
 */
export const SINK_FETCH = {
  maxWaitTimeInMs: 100,
  maxBytesPerPartition: 512 * 1024,
  maxBytes: 1024 * 1024,
  partitionsConsumedConcurrently: 2,
  maxBatch: 20_000,
  stateCacheBytes: STATE_CACHE_BYTES,
} as const;

/** How much the consumer fetches and holds at once; together they bound the sink's memory (README). */
export interface SinkFetch {
  /** Most bytes (compressed, as stored) of one fetch response from one broker. */
  readonly maxBytes: number;
  /** Most bytes of one partition in one fetch response. */
  readonly maxBytesPerPartition: number;
  /** Transactions written at once (each of its own partition). */
  readonly partitionsConsumedConcurrently: number;
  /** Most checks in one transaction; the queue holds at most this many per writer and one more such. */
  readonly maxBatch: number;
  /** How long the broker waits for data before answering a fetch. */
  readonly maxWaitTimeInMs: number;
  /** Most bytes of state rows kept in memory between transactions (src/db/state_cache.ts). */
  readonly stateCacheBytes: number;
}

/**
 * A kafkajs consumer in `group` with the fetch sizes of `fetch`; once `retired` aborts, it never restarts
 * itself after a crash.
 *
 * @example
 * ```ts
 * import type { Kafka } from "kafkajs";
 * declare const kafka: Kafka;
 * const retired = new AbortController();
 * const consumer = createGroupConsumer(kafka, "monitor-sink", SINK_FETCH, retired.signal);
 * ```
 */
export function createGroupConsumer(
  kafka: Kafka,
  group: string,
  fetch: SinkFetch,
  retired: AbortSignal,
): Consumer {
  return kafka.consumer({
    groupId: group,
    // A crashed member holds its partitions until this runs out: short enough for quick failover,
    // long enough to ride out a pause.
    sessionTimeout: 20_000,
    heartbeatInterval: 3_000,
    maxWaitTimeInMs: fetch.maxWaitTimeInMs,
    maxBytesPerPartition: fetch.maxBytesPerPartition,
    maxBytes: fetch.maxBytes,
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
