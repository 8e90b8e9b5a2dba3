/**
 * Past a gap of messages Kafka no longer has: deleted by the topic's retention while no sink ran, they can
 * never be stored, and the partition must not wait for them for ever.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import { deadline } from "../async.ts";
import type { Logger } from "../log.ts";
import type { Batch, OffsetGap } from "../db/batch.ts";
import type { LagTracker } from "./lag.ts";
import { readWatermarks, watermarkAdmin } from "./watermarks.ts";

/** What {@linkcode pastExpiredMessages} needs of the consumer. */
export interface ExpiredContext {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly tracker: LagTracker;
  readonly log: Logger;
}

/**
 * The batch refused for a gap, allowed past it when every message of the gap is gone from Kafka (deleted by
 * retention while the sink was away), which the topic's log start offset proves; else null.
 */
export async function pastExpiredMessages(
  context: ExpiredContext,
  gap: OffsetGap,
  batch: Batch,
): Promise<Batch | null> {
  const stored = BigInt(gap.stored);
  // The watermarks are read every few seconds; a gap is rare, so the log start is read now if it is not known
  // to be past the stored offset yet (say a partition assigned a moment ago).
  let logStart = context.tracker.logStart(gap.partition);
  if (logStart <= stored) logStart = await readLogStart(context, gap.partition) ?? logStart;
  if (stored >= logStart || gap.fetchedFrom > logStart) return null;
  context.log.warn("messages deleted from Kafka before they were stored (topic retention): skipped", {
    partition: gap.partition,
    from: gap.stored,
    to: logStart.toString(),
    lost: (logStart - stored).toString(),
  });
  return { ...batch, progress: [{ ...batch.progress[0]!, fetchedFrom: gap.stored }] };
}

/** The partition's log start offset as the broker says now, or null if it cannot be read within seconds. */
async function readLogStart(context: ExpiredContext, partition: number): Promise<bigint | null> {
  const admin = watermarkAdmin(context.kafka);
  try {
    await deadline(admin.connect(), 5_000);
    const marks = await readWatermarks(admin, context.topic, 5_000);
    return marks.find((mark) => mark.partition === partition)?.low ?? null;
  } catch (error) {
    context.log.debug("cannot read the log start offset", { partition, error: (error as Error).message });
    return null;
  } finally {
    await deadline(admin.disconnect(), 2_000).catch(() => {});
  }
}
