/**
 * The messages between the agent's main thread and its publisher worker (./publisher_worker.ts), shared by
 * both sides so that they cannot drift apart.
 *
 * @module
 */
import type { KafkaSettings } from "../kafka.ts";
import type { LogFields, LogLevel } from "../log.ts";

/** What the worker needs to build its outbox, kafkajs client and publisher. */
export interface PublisherWorkerInit {
  readonly type: "init";
  readonly settings: KafkaSettings;
  readonly outboxSize: number;
  /** Whether the first connection creates the topic when missing, with `partitions`. */
  readonly createTopic: boolean;
  readonly partitions: number;
}

/**
 * A batch of results: their keys, and their JSON texts joined by "\n" (JSON text never holds a raw line
 * break), since one string crosses the thread boundary far cheaper than an array of them.
 */
export interface PublisherWorkerResults {
  readonly type: "results";
  readonly keys: readonly string[];
  readonly values: string;
}

/** Messages to the worker. */
export type ToPublisherWorker =
  | PublisherWorkerInit
  | PublisherWorkerResults
  | { readonly type: "start" }
  | { readonly type: "stop"; readonly timeoutMs: number };

/** The publisher's counts, as the worker last reported them. */
export interface PublisherCounts {
  /** Results the worker has taken in (to tell the ones still crossing the boundary). */
  readonly received: number;
  readonly published: number;
  readonly resent: number;
  /** Results not yet acknowledged: in the outbox or in a send under way. */
  readonly pending: number;
  readonly dropped: number;
  readonly failures: number;
}

/** Messages from the worker. */
export type FromPublisherWorker =
  | { readonly type: "counts"; readonly counts: PublisherCounts }
  | {
    readonly type: "log";
    readonly level: LogLevel;
    readonly message: string;
    readonly fields: LogFields;
    /** When the worker logged it: the main thread may get to it later, and the line keeps this time. */
    readonly at: number;
  }
  | { readonly type: "stopped"; readonly undelivered: number; readonly counts: PublisherCounts };
