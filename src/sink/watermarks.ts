/**
 * Reads the topic's high watermarks from the broker on a timer, with an admin client of its own, for the
 * sink's true lag (./lag.ts). Independent of the consumer on purpose: a consumer stuck on a dead coordinator
 * receives nothing, and its own view of the log end is exactly what goes stale.
 *
 * @module
 */
import type { Admin, Kafka } from "kafkajs";
import { deadline, delay } from "../async.ts";
import type { Logger } from "../log.ts";
import type { Watermark } from "./lag.ts";

/** Options of {@linkcode pollWatermarks}. */
export interface WatermarkOptions {
  readonly topic: string;
  /** Time between reads. */
  readonly everyMs: number;
  readonly log: Logger;
  /** Ends the polling. */
  readonly signal: AbortSignal;
}

/** An admin client for watermark reads: a read that fails is tried again once, then left to the caller. */
export function watermarkAdmin(kafka: Kafka): Admin {
  return kafka.admin({ retry: { retries: 1, initialRetryTime: 300, maxRetryTime: 1_000 } });
}

/** Every partition's watermarks of `topic`, read once with `admin` (connected), within `ms`. */
export async function readWatermarks(admin: Admin, topic: string, ms: number): Promise<Watermark[]> {
  const offsets = await deadline(admin.fetchTopicOffsets(topic), ms);
  return offsets.map((entry) => ({
    partition: entry.partition,
    high: BigInt(entry.high),
    low: BigInt(entry.low),
  }));
}

/**
 * Calls `onWatermarks` with every partition's watermarks every `everyMs` until `signal` aborts. A read that
 * fails or takes longer than `everyMs` is logged (once per failure streak) and retried on a fresh client.
 *
 * @example
 * ```ts
 * import type { Kafka } from "kafkajs";
 * import type { Logger } from "../log.ts";
 * import { LagTracker } from "./lag.ts";
 * declare const kafka: Kafka;
 * declare const log: Logger;
 * declare const shutdown: AbortSignal;
 * const tracker = new LagTracker(30_000);
 * const polling = pollWatermarks(kafka, (marks) => tracker.watermarks(marks, Date.now()), {
 *   topic: "monitor.checks", everyMs: 5_000, log, signal: shutdown,
 * });
 * // ... on shutdown:
 * await polling;
 * ```
 */
export async function pollWatermarks(
  kafka: Kafka,
  onWatermarks: (marks: Watermark[]) => void,
  options: WatermarkOptions,
): Promise<void> {
  const { topic, everyMs, log, signal } = options;
  let admin: Admin | null = null;
  let failing = false;
  while (!signal.aborted) {
    try {
      if (admin === null) {
        admin = watermarkAdmin(kafka);
        await deadline(admin.connect(), everyMs);
      }
      onWatermarks(await readWatermarks(admin, topic, everyMs));
      if (failing) log.info("reading the topic's high watermarks again", { topic });
      failing = false;
    } catch (error) {
      if (!failing) {
        log.warn("cannot read the topic's high watermarks; lag is as of the last read", {
          topic,
          error: (error as Error).message,
        });
      }
      failing = true;
      const broken = admin;
      admin = null;
      if (broken !== null) await deadline(broken.disconnect(), 2_000).catch(() => {});
    }
    await delay(everyMs, { signal }).catch(() => {});
  }
  if (admin !== null) await deadline(admin.disconnect(), 2_000).catch(() => {});
}
