/**
 * The sink's writer: one Kafka batch, one PostgreSQL transaction — checks, sites, agents, latest status, dead
 * letters and the consumer offsets that say how far the stored data goes. Across crashes, restarts, rebalances
 * and redelivery, each message is stored once: the offsets row of each partition is locked first, and messages
 * below its `next_offset` are skipped; check ids are idempotent besides.
 *
 * @module
 */
import type postgres from "postgres";
import { checkIdToUuid, type CheckResult } from "../message.ts";
import { numberArray, textArray } from "./_arrays.ts";
import { all } from "./_pipeline.ts";
import { transaction } from "./_transaction.ts";
import { cleanText, timestampMicros } from "./_values.ts";
import { insertChecksUnnest, toCheckRow } from "./check_rows.ts";
import { locationOf, type TimedCheck, upsertAgents, upsertLocations, upsertSites } from "./names.ts";
import { toPeriod, upsertRollups } from "./rollups.ts";
import {
  type BatchChanges,
  committedSites,
  distinctIds,
  foldSites,
  insertedChecks,
  type LocatedCheck,
} from "./writer_steps.ts";
import { planFast, writeFast } from "./fast_state.ts";
import type { StateCache } from "./state_cache.ts";
import { readSiteRows, type StoredSite, writeSiteChanges } from "./state_store.ts";

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
}

/** One batch from the consumer. Every message's partition has a `progress` entry whose range holds its offset. */
export interface Batch {
  readonly group: string;
  readonly topic: string;
  readonly checks: readonly IncomingCheck[];
  readonly deadLetters: readonly DeadLetter[];
  readonly progress: readonly PartitionProgress[];
}

/** Options of {@linkcode writeBatch}. */
export interface WriteOptions {
  /** The sink's clock; default the current time. */
  readonly now?: Date;
  /**
   * The state rows this writer committed last (src/db/state_cache.ts): sites found there are not read back
   * from the database, and every site is folded in JavaScript and written with guarded statements. Without
   * it, sites are read, or written by the fast path when their checks change nothing but counts.
   */
  readonly cache?: StateCache;
}

/** What {@linkcode writeBatch} did with the batch's messages. */
export interface BatchResult {
  /** Checks inserted. */
  readonly stored: number;
  /** Checks whose id was already stored (or repeated in the batch). */
  readonly duplicates: number;
  /** Dead letters inserted (a redelivered one is not inserted again). */
  readonly deadLetters: number;
  /** Checks and dead letters below the stored next offset of their partition: stored by an earlier batch. */
  readonly skipped: number;
}

const OFFSET = /^(0|[1-9]\d{0,18})$/;
/** How far ahead of the sink's clock a check may start and still become a site's latest status. */
export const MAX_FUTURE_MS = 10 * 60_000;
const DEAD_LETTER_CHUNK = 5000;

/**
 * Writes a batch in one transaction and returns what was stored.
 *
 * `site_status` moves only forward in time, and a check that starts more than {@linkcode MAX_FUTURE_MS} after
 * `now` (an agent's clock far ahead) is stored but does not become the latest status: it would hold the status
 * until that time.
 *
 * @throws {TypeError} A batch of the wrong shape, before touching the database.
 * @throws {RangeError} A batch with values out of range, before touching the database.
 * @throws {postgres.PostgresError} A database error, with its SQLSTATE `code`; the transaction is rolled back,
 *   and the caller retries the same batch.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * declare const checks: IncomingCheck[];
 * const [group, topic, deadLetters] = ["monitor-sink", "monitor.checks", []];
 * const progress = [{ partition: 0, firstOffset: "1200", nextOffset: "1700" }];
 * const result = await writeBatch(sql, { group, topic, checks, deadLetters, progress });
 * // { stored: 498, duplicates: 2, deadLetters: 0, skipped: 0 }
 * ```
 */
export async function writeBatch(
  sql: postgres.Sql,
  batch: Batch,
  options: WriteOptions = {},
  careful = false,
): Promise<BatchResult> {
  const ranges = validateBatch(batch);
  const timed = batch.checks.map(({ check }): TimedCheck => ({
    check,
    micros: timestampMicros(check.started_at),
  }));
  const now = options.now ?? new Date();
  const { cache } = options;
  const generation = cache?.generation ?? 0;
  const partitions = [...ranges.keys()].sort((a, b) => a - b);
  let committed: Map<number, StoredSite> | null = null;
  const taken: number[] = [];
  return await transaction(sql, async (tx) => {
    // Lock this group's offsets rows, in partition order so that two sinks never wait on each other in a cycle.
    // Statements that do not need each other's results are sent together (postgres.js pipelines them on the
    // transaction's connection), so building one query's parameters overlaps the server running the previous.
    const [, rows] = await all([
      tx`
        insert into consumer_offsets (group_id, topic, partition, next_offset)
        select ${batch.group}, ${batch.topic}, p, 0 from unnest(${numberArray(partitions)}::int4[]) p
        order by p
        on conflict do nothing`,
      tx<{ partition: number; next_offset: string }[]>`
        select partition, next_offset from consumer_offsets
        where group_id = ${batch.group} and topic = ${batch.topic}
          and partition = any(${numberArray(partitions)}::int4[])
        order by partition
        for update`,
    ]);
    const fence = new Map(rows.map((row) => [row.partition, BigInt(row.next_offset)]));
    const isNew = (message: { partition: number; offset: string }) =>
      BigInt(message.offset) >= (fence.get(message.partition) ?? 0n);
    const checks = timed.filter((_, i) => isNew(batch.checks[i]!));
    const letters = batch.deadLetters.filter(isNew);
    const skipped = batch.checks.length - checks.length + batch.deadLetters.length - letters.length;

    let resolved: LocatedCheck[] = [];
    if (checks.length > 0) {
      const [sites, agents, locations] = await all([
        upsertSites(tx, checks, now),
        upsertAgents(tx, checks.map(({ check }) => check)),
        upsertLocations(tx, checks.map(({ check }) => check)),
      ]);
      resolved = checks.map(({ check, micros }): LocatedCheck => ({
        check,
        micros,
        id: checkIdToUuid(check.id),
        siteId: sites.get(check.site)!,
        agentId: agents.get(check.agent, check.region),
        locationId: locations.get(locationOf(check))!,
      }));
    }
    // Usually every check is new: the fast state path (src/db/fast_state.ts) is sent with the insert. When the
    // insert finds a check id stored by an earlier batch (a producer retry published it twice), that guess was
    // wrong: the transaction is rolled back and the batch written again the careful way, which folds in only the
    // checks this transaction inserted. Sites the fast path could not take are read and folded afterwards.
    const unique = distinctIds(resolved);
    const horizon = BigInt(now.getTime() + MAX_FUTURE_MS) * 1000n;
    const guess = careful || cache !== undefined || unique.length === 0 ? null : planFast(unique, horizon);
    const [inserted, deadLetters, , fastSites] = await all([
      insertChecksUnnest(tx, resolved.map((r) => toCheckRow(r.check, r))),
      insertDeadLetters(tx, batch.topic, letters),
      tx`
        update consumer_offsets c
        set next_offset = greatest(c.next_offset, p.next_offset), updated_at = now()
        from unnest(
          ${numberArray(partitions)}::int4[],
          ${textArray(partitions.map((p) => ranges.get(p)!.next.toString()))}::int8[]
        ) as p(partition, next_offset)
        where c.group_id = ${batch.group} and c.topic = ${batch.topic} and c.partition = p.partition`,
      guess === null ? null : writeFast(tx, guess, now),
    ]);
    if (guess !== null && inserted !== unique.length) throw new GuessedWrong();
    if (inserted > 0) {
      const mine = guess === null ? await insertedChecks(tx, unique, inserted) : unique;
      const fast = fastSites ??
        (cache === undefined ? await writeFast(tx, planFast(mine, horizon), now) : null);
      const rest = fast === null ? mine : mine.filter((r) => !fast.has(r.siteId));
      if (rest.length > 0) {
        const siteIds = [...new Set(rest.map((r) => r.siteId))];
        let stored: Map<number, StoredSite>;
        if (cache === undefined) stored = await readSiteRows(tx, siteIds);
        else {
          const { held, missing } = cache.take(siteIds);
          taken.push(...siteIds);
          stored = held;
          if (missing.length > 0) {
            for (const [id, site] of await readSiteRows(tx, missing)) stored.set(id, site);
          }
        }
        const changes = foldSites(stored, rest, now, MAX_FUTURE_MS);
        const [opened] = await all(writeChanges(tx, changes, stored));
        if (cache !== undefined) committed = committedSites(stored, changes, opened);
      }
    }
    const storedCount = inserted;
    return { stored: storedCount, duplicates: checks.length - storedCount, deadLetters, skipped };
  }).then((result) => {
    if (committed !== null) cache!.put(generation, committed);
    return result;
  }).catch((error) => {
    if (error instanceof GuessedWrong) return writeBatch(sql, batch, options, true);
    throw error;
  }).finally(() => cache?.release(taken));
}

/** Thrown (and caught) inside writeBatch when a check of the batch was already stored. */
class GuessedWrong extends Error {}

function writeChanges(
  tx: postgres.TransactionSql,
  changes: BatchChanges,
  stored: ReadonlyMap<number, StoredSite>,
): [Promise<Map<number, number>>, ...Promise<unknown>[]] {
  return [
    writeSiteChanges(tx, changes.sites, changes.locations, stored),
    upsertRollups(tx, "hourly", toPeriod(changes.hourly, "hourly")),
    upsertRollups(tx, "daily", toPeriod(changes.hourly, "daily")),
  ];
}

/**
 * Returns the next offset to read of each partition of `topic` that `group` has stored, as decimal text.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const offsets = await readOffsets(sql, "monitor-sink", "monitor.checks"); // Map { 0 => "1200", 1 => "977" }
 * ```
 */
export async function readOffsets(
  sql: postgres.Sql,
  group: string,
  topic: string,
): Promise<Map<number, string>> {
  const rows = await sql<{ partition: number; next_offset: string }[]>`
    select partition, next_offset from consumer_offsets where group_id = ${group} and topic = ${topic}
    order by partition`;
  return new Map(rows.map((row) => [row.partition, row.next_offset]));
}

interface OffsetRange {
  readonly first: bigint;
  readonly next: bigint;
}

function validateBatch(batch: Batch): Map<number, OffsetRange> {
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
    ranges.set(partition, { first, next });
  }
  const check = (what: string, message: { partition: number; offset: string }) => {
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
  };
  for (const incoming of batch.checks) check("a check", incoming);
  for (const letter of batch.deadLetters) check("a dead letter", letter);
  return ranges;
}

function offset(value: string, field: string): bigint {
  if (typeof value !== "string" || !OFFSET.test(value) || BigInt(value) > 9_223_372_036_854_775_807n) {
    throw new TypeError(`Cannot write batch as '${field}' must be a decimal offset: got '${String(value)}'`);
  }
  return BigInt(value);
}

async function insertDeadLetters(
  tx: postgres.TransactionSql,
  topic: string,
  letters: readonly DeadLetter[],
): Promise<number> {
  let inserted = 0;
  for (let start = 0; start < letters.length; start += DEAD_LETTER_CHUNK) {
    const rows = letters.slice(start, start + DEAD_LETTER_CHUNK).map((letter) => ({
      topic,
      partition: letter.partition,
      offset: letter.offset,
      key: letter.key,
      payload: letter.value,
      error: cleanText(letter.error),
    }));
    const result = await tx`
      insert into dead_letters ${tx(rows, "topic", "partition", "offset", "key", "payload", "error")}
      on conflict do nothing`;
    inserted += result.count;
  }
  return inserted;
}
