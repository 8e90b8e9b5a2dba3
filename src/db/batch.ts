/**
 * What the consumer hands the writer: one batch of decoded checks and dead letters with the offset range of
 * each partition it covers, and the check that the batch is well-formed before anything is written.
 *
 * @module
 */
import type { CheckResult } from "../message.ts";

/** A decoded check and where it came from. */
export interface IncomingCheck {
  readonly partition: number;
  /** Kafka offset, decimal text. */
  readonly offset: string;
  readonly check: CheckResult;
}

/** A message that could not be decoded, stored raw with the reason. */
export interface DeadLetter {
  readonly partition: number;
  readonly offset: string;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly error: string;
}

/** The offsets of one partition's messages in the batch: the first one, and the last one + 1. */
export interface PartitionProgress {
  readonly partition: number;
  readonly firstOffset: string;
  readonly nextOffset: string;
  /**
   * The offset the consumer fetched this range from, when it vouches that every message of the partition from
   * there to `nextOffset` is in the batch (kafkajs's `batch.fetchedOffset`). A stored next offset below it
   * means messages between were never stored: the batch is refused with {@linkcode OffsetGap}.
   */
  readonly fetchedFrom?: string;
}

/**
 * A batch that would leave a hole: its partition's stored next offset is below where the batch was fetched
 * from. Nothing was written; the consumer reads the partition again from `stored`.
 */
export class OffsetGap extends Error {
  constructor(readonly partition: number, readonly stored: string, readonly fetchedFrom: bigint) {
    super(
      `Cannot write batch as partition ${partition} was fetched from offset ${fetchedFrom} but the next ` +
        `offset stored is ${stored}: the messages between were never stored`,
    );
    this.name = "OffsetGap";
  }
}

/** One batch from the consumer. Every message's partition has a `progress` entry whose range holds its offset. */
export interface Batch {
  readonly group: string;
  readonly topic: string;
  readonly checks: readonly IncomingCheck[];
  readonly deadLetters: readonly DeadLetter[];
  readonly progress: readonly PartitionProgress[];
}

const OFFSET = /^(0|[1-9]\d{0,18})$/;

/** One partition's offsets in a batch, as numbers. */
export interface OffsetRange {
  readonly first: bigint;
  readonly next: bigint;
  /** Where the consumer fetched the range from, when it vouches for it (PartitionProgress.fetchedFrom). */
  readonly fetched: bigint | null;
}

/**
 * Checks a batch's shape and values, throwing a `TypeError` or `RangeError` that names the field; returns each
 * partition's range and each message's offset.
 *
 * @example
 * ```ts
 * declare const batch: Batch;
 * const { ranges, checkOffsets } = validateBatch(batch); // ranges.get(0) => { first: 41n, next: 45n, fetched: 41n }
 * ```
 */
export function validateBatch(
  batch: Batch,
): { ranges: Map<number, OffsetRange>; checkOffsets: bigint[]; letterOffsets: bigint[] } {
  if (batch.group === "") throw new TypeError("Cannot write batch as 'group' must not be empty");
  if (batch.topic === "") throw new TypeError("Cannot write batch as 'topic' must not be empty");
  const ranges = new Map<number, OffsetRange>();
  for (const progress of batch.progress) {
    const { partition } = progress;
    if (!Number.isInteger(partition) || partition < 0 || partition > 2_147_483_647) {
      throw new RangeError(
        `Cannot write batch as a partition must be a non-negative integer: got ${partition}`,
      );
    }
    if (ranges.has(partition)) {
      throw new RangeError(`Cannot write batch as partition ${partition} has two progress entries`);
    }
    const first = offset(progress.firstOffset, "firstOffset");
    const next = offset(progress.nextOffset, "nextOffset");
    if (first > next) {
      throw new RangeError(
        `Cannot write batch as partition ${partition} has firstOffset '${first}' after nextOffset '${next}'`,
      );
    }
    const fetched = progress.fetchedFrom === undefined ? null : offset(progress.fetchedFrom, "fetchedFrom");
    if (fetched !== null && fetched > first) {
      throw new RangeError(
        `Cannot write batch as partition ${partition} has fetchedFrom '${fetched}' after firstOffset '${first}'`,
      );
    }
    ranges.set(partition, { first, next, fetched });
  }
  const check = (what: string, message: { partition: number; offset: string }): bigint => {
    const range = ranges.get(message.partition);
    if (range === undefined) {
      throw new RangeError(
        `Cannot write batch as ${what} at partition ${message.partition} offset '${message.offset}' has no progress entry`,
      );
    }
    const at = offset(message.offset, "offset");
    if (at < range.first || at >= range.next) {
      throw new RangeError(
        `Cannot write batch as ${what} at partition ${message.partition} offset '${at}' is outside the batch's ` +
          `range for that partition: ${range.first} to ${range.next - 1n}`,
      );
    }
    return at;
  };
  const checkOffsets = batch.checks.map((incoming) => check("a check", incoming));
  const letterOffsets = batch.deadLetters.map((letter) => check("a dead letter", letter));
  return { ranges, checkOffsets, letterOffsets };
}

function offset(value: string, field: string): bigint {
  const parsed = typeof value === "string" && OFFSET.test(value) ? BigInt(value) : -1n;
  if (parsed < 0n || parsed > 9_223_372_036_854_775_807n) {
    throw new TypeError(`Cannot write batch as '${field}' must be a decimal offset: got '${String(value)}'`);
  }
  return parsed;
}
