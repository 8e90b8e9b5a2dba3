/**
 * The main thread's side of the publisher worker (./publisher_worker.ts): probes hand it results, it posts
 * them to the worker in small batches, and it keeps the worker's last reported counts for the summary line
 * and /metrics. On the main thread a result costs one `JSON.stringify`; kafkajs's record encoding, gzip and
 * the outbox live in the worker.
 *
 * @module
 */
import { deadline, isTimeout } from "../async.ts";
import type { KafkaSettings } from "../kafka.ts";
import type { Logger } from "../log.ts";
import type { CheckResult } from "../message.ts";
import type { FromPublisherWorker, PublisherCounts, ToPublisherWorker } from "./_publisher_protocol.ts";

/** The worker module; `deno compile` includes it by this path (dev/compile.sh). */
export const PUBLISHER_WORKER_URL: URL = new URL("./publisher_worker.ts", import.meta.url);

/** Results posted together once this many are waiting... */
const BATCH_SIZE = 256;
/**
 * ...or once the oldest has waited this long. Every post costs the main thread a wake-up of the worker
 * whatever its size (more than the copy of the text), so batches are kept large: at 5 ms a post carried
 * 15 results at 3,000 probes a second; this adds at most 25 ms to a result's way to Kafka.
 */
const BATCH_DELAY_MS = 25;
/** Beyond the drain timeout, how long the worker may take to report (its publisher's last send and disconnect). */
const STOP_GRACE_MS = 5_000;

/** Options of {@linkcode PublisherClient}. */
export interface PublisherClientOptions {
  readonly settings: KafkaSettings;
  readonly outboxSize: number;
  readonly createTopic: boolean;
  readonly partitions: number;
  /** Where the worker's log lines go. */
  readonly log: Logger;
}

/** The figures of the summary line and /metrics. */
export interface PublishStats {
  readonly published: number;
  readonly resent: number;
  /** Results not yet acknowledged by Kafka: waiting here, crossing to the worker, or in its outbox. */
  readonly outbox: number;
  readonly dropped: number;
  readonly failures: number;
}

const ZERO: PublisherCounts = { received: 0, published: 0, resent: 0, pending: 0, dropped: 0, failures: 0 };

/**
 * Publishes results to Kafka from a worker.
 *
 * @example
 * ```ts
 * import type { KafkaSettings } from "../kafka.ts";
 * import { createLogger } from "../log.ts";
 * import type { CheckResult } from "../message.ts";
 * declare const settings: KafkaSettings;
 * declare const result: CheckResult;
 * const log = createLogger({ format: "text" });
 * const publisher = new PublisherClient({ settings, outboxSize: 100_000, createTopic: false, partitions: 6, log });
 * publisher.start();
 * publisher.push(result);
 * const undelivered = await publisher.stop(15_000); // flushed, or counted as undelivered
 * ```
 */
export class PublisherClient {
  readonly #worker: Worker;
  readonly #log: Logger;
  readonly #failure = new AbortController();
  #keys: string[] = [];
  #values: string[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #posted = 0;
  #counts: PublisherCounts = ZERO;
  #stopped: ((undelivered: number) => void) | null = null;
  #closed = false;

  constructor(options: PublisherClientOptions) {
    this.#log = options.log;
    this.#worker = new Worker(PUBLISHER_WORKER_URL.href, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<FromPublisherWorker>) => this.#receive(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      const error = new Error(`Cannot publish: the publisher worker failed: ${event.message}`);
      this.#failure.abort(error);
      this.#stopped?.(this.#undelivered());
    };
    this.#post({
      type: "init",
      settings: options.settings,
      outboxSize: options.outboxSize,
      createTopic: options.createTopic,
      partitions: options.partitions,
    });
  }

  /** Aborts, with the error as its reason, when the worker failed (a bug: it never throws otherwise). */
  get failed(): AbortSignal {
    return this.#failure.signal;
  }

  /** Queues a result; it reaches the worker within a few milliseconds. */
  push(result: CheckResult): void {
    this.#keys.push(result.site);
    this.#values.push(JSON.stringify(result));
    if (this.#keys.length >= BATCH_SIZE) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), BATCH_DELAY_MS);
  }

  /** Starts publishing (the worker holds results until then). */
  start(): void {
    this.#post({ type: "start" });
  }

  /** The latest counts. */
  stats(): PublishStats {
    const counts = this.#counts;
    return {
      published: counts.published,
      resent: counts.resent,
      outbox: this.#undelivered(),
      dropped: counts.dropped,
      failures: counts.failures,
    };
  }

  /**
   * Publishes what is queued, waiting at most `timeoutMs` (plus the publisher's grace for a send in
   * flight), then ends the worker. Returns how many results were left unpublished.
   */
  async stop(timeoutMs: number): Promise<number> {
    if (this.#closed) return this.#undelivered();
    this.#flush();
    const reported = new Promise<number>((resolve) => this.#stopped = resolve);
    this.#post({ type: "stop", timeoutMs });
    try {
      return this.#failure.signal.aborted
        ? this.#undelivered()
        : await deadline(reported, timeoutMs + STOP_GRACE_MS);
    } catch (error) {
      if (!isTimeout(error)) throw error;
      this.#log.warn("the publisher worker did not report within the drain timeout; ending it");
      return this.#undelivered();
    } finally {
      this.#closed = true;
      this.#worker.terminate();
    }
  }

  #undelivered(): number {
    return this.#keys.length + (this.#posted - this.#counts.received) + this.#counts.pending;
  }

  #flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#keys.length === 0 || this.#closed) return;
    const keys = this.#keys;
    const values = this.#values.join("\n");
    this.#keys = [];
    this.#values = [];
    this.#posted += keys.length;
    this.#post({ type: "results", keys, values });
  }

  #post(message: ToPublisherWorker): void {
    this.#worker.postMessage(message);
  }

  #receive(message: FromPublisherWorker): void {
    if (message.type === "counts") {
      this.#counts = message.counts;
    } else if (message.type === "log") {
      this.#log[message.level](message.message, message.fields, message.at);
    } else {
      this.#counts = message.counts;
      this.#stopped?.(message.undelivered);
    }
  }
}
