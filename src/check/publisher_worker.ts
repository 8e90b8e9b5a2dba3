/**
 * The agent's publisher worker: owns the outbox, the kafkajs client and the {@linkcode Publisher}, so that
 * kafkajs's record encoding and gzip run beside the probes instead of between them. The main thread talks to
 * it through ./publisher_client.ts; the messages are in ./_publisher_protocol.ts. Its log lines go to the
 * main thread's logger, so they keep the agent's format and level.
 *
 * Loaded as a module worker; `deno compile` must `--include` this file (dev/compile.sh).
 *
 * @module
 */
import { createKafka, ensureTopic } from "../kafka.ts";
import type { LogFields, Logger, LogLevel } from "../log.ts";
import { Outbox } from "./outbox.ts";
import { type OutboxEntry, Publisher, PUBLISHER_REQUEST_TIMEOUT_MS } from "./publisher.ts";
import type {
  FromPublisherWorker,
  PublisherCounts,
  PublisherWorkerInit,
  ToPublisherWorker,
} from "./_publisher_protocol.ts";

/** The part of a worker's global scope used here (the project type-checks with the window library). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToPublisherWorker>) => void) | null;
  postMessage(message: FromPublisherWorker): void;
}

const scope = globalThis as unknown as WorkerScope;
const encoder = new TextEncoder();
/** How often changed counts are reported: the summary line and /metrics may lag by this much. */
const COUNTS_EVERY_MS = 100;

function post(message: FromPublisherWorker): void {
  try {
    scope.postMessage(message);
  } catch {
    // A log field that cannot be cloned (kafkajs passes what it likes): send it as text instead.
    if (message.type !== "log") throw new Error("Cannot report to the agent: message not cloneable");
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(message.fields)) fields[key] = String(value);
    scope.postMessage({ ...message, fields });
  }
}

const forward = (level: LogLevel) => (message: string, fields: LogFields = {}) =>
  post({ type: "log", level, message, fields, at: Date.now() });
const log: Logger = {
  debug: forward("debug"),
  info: forward("info"),
  warn: forward("warn"),
  error: forward("error"),
};

/** The publisher and its outbox, once `init` arrived. */
class Hosted {
  readonly #outbox: Outbox<OutboxEntry>;
  readonly #publisher: Publisher;
  readonly #timer: ReturnType<typeof setInterval>;
  #received = 0;
  #reported = "";
  #droppedLogged = 0;
  #droppedLoggedAt = -Infinity;

  constructor(init: PublisherWorkerInit) {
    const { settings } = init;
    const kafka = createKafka(settings, log, { requestTimeoutMs: PUBLISHER_REQUEST_TIMEOUT_MS });
    this.#outbox = new Outbox<OutboxEntry>(init.outboxSize);
    let topicReady = !init.createTopic;
    this.#publisher = new Publisher(kafka, settings.topic, this.#outbox, log, {
      prepare: async () => {
        if (topicReady) return;
        if (await ensureTopic(kafka, settings.topic, init.partitions)) {
          log.info("created topic", { topic: settings.topic, partitions: init.partitions });
        }
        topicReady = true;
      },
    });
    this.#timer = setInterval(() => this.#report(), COUNTS_EVERY_MS);
  }

  accept(keys: readonly string[], values: string): void {
    const texts = values.split("\n");
    for (let i = 0; i < keys.length; i++) {
      this.#outbox.push({ key: keys[i]!, value: encoder.encode(texts[i]!) });
    }
    this.#received += keys.length;
    const dropped = this.#outbox.dropped;
    // Said at once, then at most every 10 s while it goes on: enough to alert on, not a flood.
    if (dropped > this.#droppedLogged && Date.now() - this.#droppedLoggedAt >= 10_000) {
      // The counts first, so that whoever reads the warning finds them already updated.
      this.#report();
      log.warn("outbox full: dropping the oldest results", { dropped, outbox: this.#outbox.size });
      this.#droppedLogged = dropped;
      this.#droppedLoggedAt = Date.now();
    }
  }

  start(): void {
    this.#publisher.start();
  }

  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    const undelivered = await this.#publisher.stop(timeoutMs);
    post({ type: "stopped", undelivered, counts: this.#counts() });
  }

  #counts(): PublisherCounts {
    return {
      received: this.#received,
      published: this.#publisher.published,
      resent: this.#publisher.resent,
      pending: this.#publisher.pending,
      dropped: this.#outbox.dropped,
      failures: this.#publisher.failures,
    };
  }

  #report(): void {
    const counts = this.#counts();
    const key = Object.values(counts).join(",");
    if (key === this.#reported) return;
    this.#reported = key;
    post({ type: "counts", counts });
  }
}

let hosted: Hosted | null = null;

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "init") {
    hosted = new Hosted(message);
    return;
  }
  if (hosted === null) throw new Error(`Cannot handle '${message.type}': the publisher worker has no 'init'`);
  if (message.type === "results") hosted.accept(message.keys, message.values);
  else if (message.type === "start") hosted.start();
  else {hosted.stop(message.timeoutMs).catch((error) =>
      setTimeout(() => {
        throw error;
      })
    );}
};
