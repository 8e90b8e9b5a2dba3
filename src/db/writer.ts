/**
 * The sink's writer: one Kafka batch, one PostgreSQL transaction — checks, sites, agents, latest status, dead
 * letters and the consumer offsets that say how far the stored data goes. Across crashes, restarts, rebalances
 * and redelivery, each message is stored once: the offsets row of each partition is locked first, and messages
 * below its `next_offset` are skipped; check ids are idempotent besides.
 *
 * @module
 */
import type postgres from "postgres";
import { checkIdToUuid } from "../check_id.ts";
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
  distinctChecks,
  foldSites,
  insertedChecks,
  type LocatedCheck,
} from "./writer_steps.ts";
import type { StateCache } from "./state_cache.ts";
import { type Batch, type DeadLetter, OffsetGap, validateBatch } from "./batch.ts";
import { readSiteRows, type StoredSite, writeSiteChanges } from "./state_store.ts";

/** Options of {@linkcode writeBatch}. */
export interface WriteOptions {
  /** The sink's clock; default the current time. */
  readonly now?: Date;
  /**
   * The state rows this writer committed last (src/db/state_cache.ts): sites found there are not read back
   * from the database. Without it, every site of the batch is read.
   */
  readonly cache?: StateCache;
  /** Checks inserted by one statement; default {@linkcode SLICE_CHECKS}. */
  readonly sliceChecks?: number;
}

/**
 * Checks inserted by one statement. A transaction of tens of thousands of checks inserts them a slice at a time,
 * so that what the insert builds for each check (its row, its share of the array literals and of postgres.js's
 * message buffer, about 1 KB) is held for one or two slices, not for the whole transaction.
 */
export const SLICE_CHECKS = 5_000;

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
 * import type { IncomingCheck } from "./batch.ts";
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
): Promise<BatchResult> {
  try {
    return await attempt(sql, batch, options, true);
  } catch (error) {
    if (!(error instanceof GuessedWrong)) throw error;
    return await attempt(sql, batch, options, false);
  }
}

/** Thrown inside a guessing attempt when a check of the batch was already stored; the batch is written again. */
class GuessedWrong extends Error {}

/**
 * One transaction of {@linkcode writeBatch}. When `guess` and every site of the batch is in the cache, the
 * checks are taken to be new (the usual case): the fold is done first and its writes are sent with the insert,
 * one round trip fewer; a check already stored makes the guess wrong, which rolls the transaction back.
 */
async function attempt(
  sql: postgres.Sql,
  batch: Batch,
  options: WriteOptions,
  guess: boolean,
): Promise<BatchResult> {
  const validated = validateBatch(batch);
  const { cache } = options;
  const generation = cache?.generation ?? 0;
  const out: AttemptOutput = { committed: null, taken: [] };
  // The transaction's callback reaches the batch only through `input`, emptied when the attempt ends: postgres.js
  // keeps each connection's last query, and the first query of each statement text keeps its stack trace for
  // good, and both hold the callback, which would otherwise keep a batch (up to tens of thousands of checks) in
  // memory for as long as the process runs.
  let input: AttemptInput | null = { batch, options, guess, validated, out };
  try {
    const result = await transaction(sql, (tx) => writeInTransaction(tx, input!));
    if (out.committed !== null) cache!.put(generation, out.committed);
    return result;
  } finally {
    input = null;
    cache?.release(out.taken);
  }
}

/** What {@linkcode attempt} hands its transaction. */
interface AttemptInput {
  readonly batch: Batch;
  readonly options: WriteOptions;
  readonly guess: boolean;
  readonly validated: ReturnType<typeof validateBatch>;
  readonly out: AttemptOutput;
}

/** What a transaction of {@linkcode attempt} leaves for after its commit. */
interface AttemptOutput {
  /** The state rows committed, for the cache; null when there is nothing to put back. */
  committed: Map<number, StoredSite> | null;
  /** The sites taken out of the cache, released when the attempt ends. */
  readonly taken: number[];
}

/** The statements of one {@linkcode attempt}, in its transaction. */
async function writeInTransaction(tx: postgres.TransactionSql, input: AttemptInput): Promise<BatchResult> {
  const { batch, options, guess, out } = input;
  const slice = options.sliceChecks ?? SLICE_CHECKS;
  const { ranges, checkOffsets, letterOffsets } = input.validated;
  const timed = batch.checks.map(({ check }): TimedCheck => ({
    check,
    micros: timestampMicros(check.started_at),
  }));
  const now = options.now ?? new Date();
  const { cache } = options;
  const partitions = [...ranges.keys()].sort((a, b) => a - b);
  // Lock this group's offsets rows, in partition order so that two sinks never wait on each other in a cycle.
  // Statements that do not need each other's results are sent together (postgres.js pipelines them on the
  // transaction's connection, and the server runs them in order), so building one query's parameters
  // overlaps the server running the previous. The names are made sure of for every check of the batch, before
  // the fence says which are new: a replayed batch changes no name row (first_seen, last_seen and the URL
  // only move past what its checks already gave them), and the common batch saves a round trip.
  const names = timed.length === 0 ? null : timed.map(({ check }) => check);
  const [, rows, sites, agents, locations] = await all([
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
    names === null ? null : upsertSites(tx, timed, now),
    names === null ? null : upsertAgents(tx, names),
    names === null ? null : upsertLocations(tx, names),
  ]);
  const fence = new Map(rows.map((row) => [row.partition, BigInt(row.next_offset)]));
  for (const [partition, { fetched }] of ranges) {
    const storedNext = fence.get(partition) ?? 0n;
    if (fetched !== null && storedNext < fetched) throw new OffsetGap(partition, `${storedNext}`, fetched);
  }
  const isNew = (message: { partition: number }, offset: bigint) =>
    offset >= (fence.get(message.partition) ?? 0n);
  const checks = timed.filter((_, i) => isNew(batch.checks[i]!, checkOffsets[i]!));
  const letters = batch.deadLetters.filter((letter, i) => isNew(letter, letterOffsets[i]!));
  const skipped = batch.checks.length - checks.length + batch.deadLetters.length - letters.length;
  const resolved = checks.map(({ check, micros }): LocatedCheck => ({
    check,
    micros,
    checkId: checkIdToUuid(check.id),
    siteId: sites!.get(check.site)!,
    agentId: agents!.get(check.agent, check.region),
    locationId: locations!.get(locationOf(check))!,
  }));
  const unique = distinctChecks(resolved);
  const siteIds = [...new Set(unique.map((r) => r.siteId))];
  const { held: stored, missing } = cache?.take(siteIds) ?? { held: new Map(), missing: siteIds };
  if (cache !== undefined) out.taken.push(...siteIds);
  const guessed = guess && cache !== undefined && missing.length === 0 && unique.length > 0
    ? foldSites(stored, unique, now, MAX_FUTURE_MS)
    : null;
  const [inserted, [deadLetters, , read, opened]] = await insertInSlices(
    tx,
    resolved,
    slice,
    () => [
      insertDeadLetters(tx, batch.topic, letters),
      tx`
      update consumer_offsets c
      set next_offset = greatest(c.next_offset, p.next_offset), updated_at = now()
      from unnest(
        ${numberArray(partitions)}::int4[],
        ${textArray(partitions.map((p) => ranges.get(p)!.next.toString()))}::int8[]
      ) as p(partition, next_offset)
      where c.group_id = ${batch.group} and c.topic = ${batch.topic} and c.partition = p.partition`,
      // Sites the cache does not hold are read in the same round trip (their rows do not depend on the insert).
      guessed === null && missing.length > 0 ? readSiteRows(tx, missing) : null,
      ...(guessed === null ? [] : writeChanges(tx, guessed, stored)),
    ],
  );
  if (guessed !== null) {
    if (inserted !== unique.length) throw new GuessedWrong();
    out.committed = committedSites(stored, guessed, opened as Map<number, number>);
  } else if (inserted > 0) {
    // Only the checks this transaction inserted move state and rollups (a producer retry may have published
    // one twice). Their sites' rows come from the cache when it holds them, else from the database.
    const mine = await insertedChecks(tx, unique, inserted);
    for (const [id, site] of read ?? []) stored.set(id, site);
    const changes = foldSites(stored, mine, now, MAX_FUTURE_MS);
    const [opened] = await all(writeChanges(tx, changes, stored));
    if (cache !== undefined) out.committed = committedSites(stored, changes, opened);
  }
  const storedCount = inserted;
  return { stored: storedCount, duplicates: checks.length - storedCount, deadLetters, skipped };
}

/**
 * Inserts the checks in statements of `size` rows, each built while the server runs an earlier one (so that
 * one or two statements' rows, array literals and buffers are held at a time, not the transaction's), then
 * sends `rest()`'s statements after the last; resolves to the rows inserted and `rest()`'s results. Every
 * statement of the transaction is sent from here, so a failure leaves none running or unhandled.
 */
async function insertInSlices<T extends readonly unknown[]>(
  tx: postgres.TransactionSql,
  resolved: readonly LocatedCheck[],
  size: number,
  rest: () => T,
): Promise<[number, { -readonly [K in keyof T]: Awaited<T[K]> }]> {
  const slices: Promise<number>[] = [];
  let inserted = 0;
  try {
    for (let start = 0; start < resolved.length; start += size) {
      const rows = resolved.slice(start, start + size).map((r) => toCheckRow(r.check, r));
      const sent = insertChecksUnnest(tx, rows);
      sent.catch(() => {});
      slices.push(sent);
      if (slices.length > 1) inserted += await slices[slices.length - 2]!;
    }
  } catch (error) {
    // Nothing sent is left running when the transaction ends, and the caller gets the first cause (a statement
    // after a failed one fails with 25P02, which `all` passes over).
    await all(slices);
    throw error;
  }
  const [last, results] = await all([slices.at(-1) ?? null, all(rest())]);
  return [inserted + (last ?? 0), results];
}

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
