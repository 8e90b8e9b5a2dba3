/**
 * The write path of the sink's consumer: decodes a Kafka batch into the rows of one transaction (undecodable
 * messages become dead letters), and stores it with backoff, keeping the group membership with heartbeats,
 * until it is stored or the partition moves away. A batch that keeps failing with the database up is written
 * in halves, down to single messages, so that the one message the database refuses goes to the dead-letter
 * table.
 *
 * @module
 */
import type { EachBatchPayload, KafkaMessage } from "kafkajs";
import { Backoff, delay } from "../async.ts";
import type { DatabaseHandle } from "../db/handle.ts";
import {
  type Batch,
  type DeadLetter,
  type IncomingCheck,
  OffsetGap,
  type PartitionProgress,
} from "../db/batch.ts";
import { type BatchResult, writeBatch } from "../db/writer.ts";
import { isTransient } from "../db/retry.ts";
import type { StateCache } from "../db/state_cache.ts";
import type { Logger } from "../log.ts";
import { decodeCheck, encodeCheck } from "../message.ts";

/** How often a long wait sends a heartbeat (kafkajs sends them only when asked). */
export const HEARTBEAT_SLICE_MS = 2_000;
const encoder = new TextEncoder();

/** A message's key and value, copied out of kafkajs's buffers (which may be views of a larger one). */
function copyRaw(
  message: Pick<KafkaMessage, "key" | "value">,
): { key: Uint8Array | null; value: Uint8Array | null } {
  return {
    key: message.key === null || message.key === undefined ? null : new Uint8Array(message.key),
    value: message.value === null ? null : new Uint8Array(message.value),
  };
}

/**
 * How far ahead of the sink's clock a check may start: past it, the agent's clock is wrong and the check is a
 * dead letter. Stored, it would sit in the default partition of `checks` for good (retention drops whole days
 * of partitions, and such a day has none) and slow the creation of every partition after it.
 */
export const MAX_AHEAD_MS = 24 * 3_600_000;

/**
 * Why a check starting at `startedAt` (RFC 3339 UTC, as decoded) cannot be stored at `nowMs`, or null. A string
 * comparison of the seconds first: almost every check is not ahead, and this runs for each one.
 */
function tooFarAhead(startedAt: string, nowMs: number, horizon: string): string | null {
  if (startedAt.slice(0, 19) <= horizon) return null;
  const hours = MAX_AHEAD_MS / 3_600_000;
  return `Cannot store a check whose started_at ${startedAt} is more than ${hours} hours ahead of the sink's ` +
    `clock (${new Date(nowMs).toISOString()}): the agent's clock is wrong`;
}

/**
 * The transaction of a non-empty Kafka batch of `group`: its decoded checks, its undecodable messages and its
 * checks starting more than {@linkcode MAX_AHEAD_MS} after `nowMs` as dead letters, and the partition's progress
 * (its first offset and the next offset after its last message). With `fetchedFrom` (kafkajs's
 * `batch.fetchedOffset`), the writer refuses it if it would leave a hole.
 */
export function decodeBatch(
  group: string,
  batch: {
    readonly topic: string;
    readonly partition: number;
    readonly messages: readonly Pick<KafkaMessage, "offset" | "key" | "value">[];
    /** kafkajs's last offset of the batch, which counts the transaction markers and aborted records after its
     * last message (kafkajs passes over them): the next offset goes past them too. */
    lastOffset?(): string;
  },
  fetchedFrom?: string,
  nowMs: number = Date.now(),
): Batch {
  const checks: IncomingCheck[] = [];
  const deadLetters: DeadLetter[] = [];
  const horizon = new Date(nowMs + MAX_AHEAD_MS).toISOString().slice(0, 19);
  for (const message of batch.messages) {
    try {
      // kafkajs's Buffer is a Uint8Array: decoded in place, copied only for a dead letter.
      const check = decodeCheck(message.value);
      const ahead = tooFarAhead(check.started_at, nowMs, horizon);
      if (ahead !== null) throw new Error(ahead);
      checks.push({ partition: batch.partition, offset: message.offset, check });
    } catch (error) {
      deadLetters.push({
        partition: batch.partition,
        offset: message.offset,
        ...copyRaw(message),
        error: (error as Error).message,
      });
    }
  }
  const last = BigInt(batch.messages.at(-1)!.offset);
  const counted = batch.lastOffset === undefined ? last : BigInt(batch.lastOffset());
  const nextOffset = ((counted > last ? counted : last) + 1n).toString();
  return {
    group,
    topic: batch.topic,
    checks,
    deadLetters,
    progress: [{
      partition: batch.partition,
      firstOffset: batch.messages[0]!.offset,
      nextOffset,
      ...(fetchedFrom === undefined ? {} : { fetchedFrom }),
    }],
  };
}

/**
 * One transaction of consecutive batches of one partition (each the one fetched after the one before it):
 * their checks and dead letters, from the first one's start to the last one's end.
 */
export function mergeBatches(batches: readonly Batch[]): Batch {
  if (batches.length === 1) return batches[0]!;
  const first = batches[0]!.progress[0]!;
  const last = batches.at(-1)!.progress[0]!;
  return {
    group: batches[0]!.group,
    topic: batches[0]!.topic,
    checks: batches.flatMap((batch) => batch.checks),
    deadLetters: batches.flatMap((batch) => batch.deadLetters),
    progress: [{ ...first, nextOffset: last.nextOffset }],
  };
}

/** What became of a batch given to {@linkcode storeBatch}. */
export type StoreOutcome = "stored" | "abandoned" | OffsetGap;

/** What {@linkcode storeBatch} needs from the consumer. */
export interface StoreContext {
  readonly db: DatabaseHandle;
  readonly log: Logger;
  readonly shutdown: AbortSignal;
  /** How long one database call may take before the pool is replaced and the call retried. */
  readonly deadlineMs: number;
  /** Called after each successful write with its result and the checks it stored. */
  readonly count: (result: BatchResult, checks: readonly IncomingCheck[]) => void;
  /** Called with +1 when a batch's first write fails and with -1 when that batch's retrying ends. */
  readonly retrying: (delta: 1 | -1) => void;
  /** The state rows this sink committed last (src/db/state_cache.ts). */
  readonly cache?: StateCache;
}

/**
 * Stores `toWrite` (one partition's), retrying with backoff until it is stored or abandoned: at shutdown, or
 * when this member no longer owns the partition. A batch that would leave a hole is not retried: the
 * {@linkcode OffsetGap} is returned, and the consumer reads the partition again from the stored offset.
 */
export async function storeBatch(
  toWrite: Batch,
  payload: Pick<EachBatchPayload, "heartbeat" | "isRunning" | "isStale">,
  context: StoreContext,
): Promise<StoreOutcome> {
  const { heartbeat, isRunning, isStale } = payload;
  const { log, shutdown } = context;
  const { partition, firstOffset } = toWrite.progress[0]!;
  const backoff = new Backoff({ minTimeout: 250, maxTimeout: 10_000 });
  try {
    for (;;) {
      // A batch of a partition this member no longer owns is left to its new owner; stored offsets fence it.
      if (!isRunning() || isStale() || shutdown.aborted) return "abandoned";
      try {
        if (backoff.attempts > 0 && backoff.attempts % 3 === 0) {
          // The same batch keeps failing with the database up: find the message that the database refuses.
          await writeInHalves(toWrite, context);
        } else {
          context.count(await heartbeating(write(toWrite, context), heartbeat), toWrite.checks);
        }
        if (backoff.attempts > 0) log.info("database writes resumed", { attempts: backoff.attempts });
        return "stored";
      } catch (error) {
        if (error instanceof OffsetGap) return error;
        if (shutdown.aborted) return "abandoned"; // not stored: nothing is acknowledged
        if (backoff.attempts === 0) context.retrying(1);
        const wait = backoff.next();
        log.warn("cannot store a batch; will retry", {
          error: (error as Error).message,
          code: (error as { code?: unknown }).code,
          partition,
          offset: firstOffset,
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
    if (backoff.attempts > 0) context.retrying(-1);
  }
}

// Finds the messages the database refuses for their data (not for being unreachable) by halving: a part that
// fails is split in two and each half written on its own, down to single messages, so one bad check in tens of
// thousands costs about thirty transactions, not one per check. A refused check goes to the dead-letter table
// with the database's error; the rest are stored, in offset order, each part vouching that it starts where the
// one before ended (the first where the batch was fetched from), so halving leaves no hole either. The raw
// bytes of a check are not kept once decoded (they would hold every queued batch's buffers), so a refused
// check's dead letter holds it encoded again from its decoded fields, keyed by its site, as the agent keys it.
async function writeInHalves(whole: Batch, context: StoreContext): Promise<void> {
  const { partition, fetchedFrom } = whole.progress[0]!;
  const items = [
    ...whole.checks.map((check) => ({ offset: check.offset, check, dead: null })),
    ...whole.deadLetters.map((dead) => ({ offset: dead.offset, check: null, dead })),
  ].sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
  let from = fetchedFrom;
  const writePart = async (start: number, end: number): Promise<void> => {
    const part = items.slice(start, end);
    const progress: PartitionProgress[] = [{
      partition,
      firstOffset: part[0]!.offset,
      // The last part ends where the batch does (past any transaction markers after its last message).
      nextOffset: end === items.length
        ? whole.progress[0]!.nextOffset
        : (BigInt(part.at(-1)!.offset) + 1n).toString(),
      ...(from === undefined ? {} : { fetchedFrom: from }),
    }];
    const checks = part.flatMap((item) => item.check === null ? [] : [item.check]);
    const single: Batch = {
      ...whole,
      checks,
      deadLetters: part.flatMap((item) => item.dead === null ? [] : [item.dead]),
      progress,
    };
    try {
      context.count(await write(single, context), checks);
    } catch (error) {
      if (error instanceof OffsetGap || !await refusedForItsData(error, context)) throw error;
      if (end - start > 1) {
        const middle = start + Math.floor((end - start) / 2);
        await writePart(start, middle);
        await writePart(middle, end);
        return;
      }
      const { check } = part[0]!;
      if (check === null) throw error;
      context.log.warn("the database refused a check; moved to the dead-letter table", {
        error: (error as Error).message,
        partition: check.partition,
        offset: check.offset,
      });
      const refused: DeadLetter = {
        partition: check.partition,
        offset: check.offset,
        key: encoder.encode(check.check.site),
        value: encodeCheck(check.check),
        error: `Cannot store check: the database refused it: ${(error as Error).message} ` +
          "(the payload is the check encoded again from its decoded fields)",
      };
      context.count(await write({ ...single, checks: [], deadLetters: [refused] }, context), []);
    }
    from = progress[0]!.nextOffset;
  };
  await writePart(0, items.length);
}

/**
 * Whether a failed write failed for what it holds, not for the state of the database: PostgreSQL refused its
 * data (SQLSTATE classes 22 data exception, 23 integrity constraint, 54 program limit, P0 raised by a
 * trigger), or the program itself failed on it (an error without a database code, say a name that came back
 * from the database changed) while the database still answers. A part that fails so is split, down to the one
 * message, which goes to the dead-letter table. Any other answer of PostgreSQL (a full disk, a cancelled
 * statement, a lock timeout, a server restarting) is the database's state: the batch is retried as it is.
 */
async function refusedForItsData(error: unknown, context: StoreContext): Promise<boolean> {
  const code = (error as { code?: unknown }).code;
  if ((error as Error | undefined)?.name === "PostgresError" && typeof code === "string") {
    return /^(22|23|54|P0)/.test(code);
  }
  if (typeof code === "string" && isTransient(error)) return false;
  try {
    await context.db.run("check that the database answers", (sql) => sql`select 1`, context.deadlineMs);
    return true;
  } catch {
    return false;
  }
}

function write(batch: Batch, context: StoreContext): Promise<BatchResult> {
  const options = context.cache === undefined ? {} : { cache: context.cache };
  return context.db.run("store a batch", (sql) => writeBatch(sql, batch, options), context.deadlineMs);
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
