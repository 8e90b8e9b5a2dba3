/**
 * The sink's writer: one Kafka batch, one PostgreSQL transaction — checks, sites, agents, latest status, dead
 * letters and the consumer offsets that say how far the stored data goes. Across crashes, restarts, rebalances
 * and redelivery, each message is stored once: the offsets row of each partition is locked first, and messages
 * below its `next_offset` are skipped; check ids are idempotent besides.
 *
 * @module
 */
import type postgres from "postgres";
import { type CheckResult, checkIdToUuid } from "../message.ts";
import { type CheckRow, insertChecksUnnest } from "./check_rows.ts";
import { advanceStatus, type StoredStatus, timestampMicros } from "./status.ts";
import { cleanText, type ResolvedCheck, upsertAgents, upsertSites } from "./names.ts";

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

const INT4 = 23;
const INT8 = 20;
const TEXT = 25;
const BOOL = 16;
const FLOAT8 = 701;
const OFFSET = /^(0|[1-9]\d{0,18})$/;
const DEAD_LETTER_CHUNK = 5000;

/**
 * Writes a batch in one transaction and returns what was stored. Throws `TypeError` or `RangeError` for a
 * malformed batch before touching the database; database errors propagate with their SQLSTATE `code` (the
 * transaction is rolled back and the caller retries the same batch).
 *
 * @example
 * ```ts
 * const result = await writeBatch(sql, { group, topic, checks, deadLetters, progress });
 * // { stored: 498, duplicates: 2, deadLetters: 0, skipped: 0 }
 * ```
 */
export async function writeBatch(sql: postgres.Sql, batch: Batch): Promise<BatchResult> {
  const ranges = validateBatch(batch);
  const partitions = [...ranges.keys()].sort((a, b) => a - b);
  return await sql.begin(async (tx) => {
    // Lock this group's offsets rows, in partition order so that two sinks never wait on each other in a cycle.
    await tx`
      insert into consumer_offsets (group_id, topic, partition, next_offset)
      select ${batch.group}, ${batch.topic}, p, 0 from unnest(${tx.array(partitions, INT4)}::int4[]) p order by p
      on conflict do nothing`;
    const rows = await tx<{ partition: number; next_offset: string }[]>`
      select partition, next_offset from consumer_offsets
      where group_id = ${batch.group} and topic = ${batch.topic}
        and partition = any(${tx.array(partitions, INT4)}::int4[])
      order by partition
      for update`;
    const fence = new Map(rows.map((row) => [row.partition, BigInt(row.next_offset)]));
    const isNew = (message: { partition: number; offset: string }) =>
      BigInt(message.offset) >= (fence.get(message.partition) ?? 0n);
    const checks = batch.checks.filter(isNew);
    const letters = batch.deadLetters.filter(isNew);
    const skipped = batch.checks.length - checks.length + batch.deadLetters.length - letters.length;

    let stored = 0;
    if (checks.length > 0) {
      const sites = await upsertSites(tx, checks.map((incoming) => incoming.check));
      const agents = await upsertAgents(tx, checks.map((incoming) => incoming.check));
      const resolved = checks.map(({ check }): ResolvedCheck => ({
        check,
        id: checkIdToUuid(check.id),
        siteId: sites.get(check.site)!,
        agentId: agents.get(check.agent, check.region),
      }));
      stored = await insertChecksUnnest(tx, resolved.map(toRow));
      await updateStatus(tx, resolved);
    }
    const deadLetters = await insertDeadLetters(tx, batch.topic, letters);
    await tx`
      update consumer_offsets c
      set next_offset = greatest(c.next_offset, p.next_offset), updated_at = now()
      from unnest(
        ${tx.array(partitions, INT4)}::int4[],
        ${tx.array(partitions.map((p) => ranges.get(p)!.next.toString()), INT8)}::int8[]
      ) as p(partition, next_offset)
      where c.group_id = ${batch.group} and c.topic = ${batch.topic} and c.partition = p.partition`;
    return { stored, duplicates: checks.length - stored, deadLetters, skipped };
  });
}

/**
 * Returns the next offset to read of each partition of `topic` that `group` has stored, as decimal text.
 *
 * @example
 * ```ts
 * const offsets = await readOffsets(sql, "monitor-sink", "monitor.checks"); // Map { 0 => "1200", 1 => "977" }
 * ```
 */
export async function readOffsets(sql: postgres.Sql, group: string, topic: string): Promise<Map<number, string>> {
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
      throw new RangeError(`Cannot write batch as a partition must be a non-negative integer: got ${partition}`);
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

function toRow({ check, id, siteId, agentId }: ResolvedCheck): CheckRow {
  return {
    id,
    siteId,
    agentId,
    scheduledAt: check.scheduled_at,
    startedAt: check.started_at,
    up: check.up,
    status: check.status,
    ttfbMs: check.ttfb_ms,
    durationMs: check.duration_ms,
    bytes: check.bytes,
    regexMatched: check.regex_matched,
    certExpiresAt: check.cert_expires_at,
    errorKind: check.error?.kind ?? null,
    errorMessage: check.error === null ? null : cleanText(check.error.message),
  };
}

async function updateStatus(tx: postgres.TransactionSql, checks: readonly ResolvedCheck[]): Promise<void> {
  const bySite = new Map<number, (ResolvedCheck & { micros: bigint; checkId: string; startedAt: string; up: boolean })[]>();
  const seen = new Set<string>();
  for (const resolved of checks) {
    if (seen.has(resolved.id)) continue; // a check twice in one batch counts once
    seen.add(resolved.id);
    const list = bySite.get(resolved.siteId) ?? [];
    list.push({
      ...resolved,
      micros: timestampMicros(resolved.check.started_at),
      checkId: resolved.id,
      startedAt: resolved.check.started_at,
      up: resolved.check.up,
    });
    bySite.set(resolved.siteId, list);
  }
  const siteIds = [...bySite.keys()].sort((a, b) => a - b);
  const rows = await tx<{ site_id: number; check_id: string; micros: string; up: boolean; failures: number }[]>`
    select site_id, check_id::text, (extract(epoch from checked_at) * 1000000)::int8 as micros, up,
           consecutive_failures as failures
    from site_status where site_id = any(${tx.array(siteIds, INT4)}::int4[])
    order by site_id
    for update`;
  const stored = new Map(rows.map((row): [number, StoredStatus] => [row.site_id, {
    micros: BigInt(row.micros),
    checkId: row.check_id,
    up: row.up,
    consecutiveFailures: row.failures,
  }]));
  const outcomes = siteIds.flatMap((siteId) => {
    const outcome = advanceStatus(stored.get(siteId) ?? null, bySite.get(siteId)!);
    return outcome === null ? [] : [outcome];
  });
  if (outcomes.length === 0) return;
  const column = <T>(pick: (outcome: typeof outcomes[number]) => T): T[] => outcomes.map(pick);
  const latest = <T>(pick: (check: CheckResult) => T): T[] => outcomes.map((outcome) => pick(outcome.latest.check));
  // A null state_since keeps the stored one. The WHERE guards the "never back in time" rule in SQL as well.
  await tx`
    insert into site_status as s (site_id, check_id, checked_at, agent_id, up, status, state_since,
                                  consecutive_failures, error_kind, error_message, duration_ms)
    select t.site_id, t.check_id, t.checked_at, t.agent_id, t.up, t.status,
           coalesce(t.state_since, cur.state_since), t.failures, t.error_kind, t.error_message, t.duration_ms
    from unnest(
      ${tx.array(column((o) => o.latest.siteId), INT4)}::int4[],
      ${tx.array(column((o) => o.latest.id), TEXT)}::text[]::uuid[],
      ${tx.array(latest((c) => c.started_at), TEXT)}::text[]::timestamptz[],
      ${tx.array(column((o) => o.latest.agentId), INT4)}::int4[],
      ${tx.array(latest((c) => c.up), BOOL)}::bool[],
      ${tx.array(latest((c) => c.status), INT4)}::int4[]::int2[],
      ${tx.array(column((o) => o.stateSince), TEXT)}::text[]::timestamptz[],
      ${tx.array(column((o) => o.consecutiveFailures), INT4)}::int4[],
      ${tx.array(latest((c) => c.error?.kind ?? null), TEXT)}::text[]::check_error_kind[],
      ${tx.array(latest((c) => c.error === null ? null : cleanText(c.error.message)), TEXT)}::text[],
      ${tx.array(latest((c) => c.duration_ms), FLOAT8)}::float8[]::real[]
    ) as t(site_id, check_id, checked_at, agent_id, up, status, state_since, failures, error_kind, error_message,
           duration_ms)
    left join site_status cur on cur.site_id = t.site_id
    order by t.site_id
    on conflict (site_id) do update set
      check_id = excluded.check_id, checked_at = excluded.checked_at, agent_id = excluded.agent_id,
      up = excluded.up, status = excluded.status, state_since = excluded.state_since,
      consecutive_failures = excluded.consecutive_failures, error_kind = excluded.error_kind,
      error_message = excluded.error_message, duration_ms = excluded.duration_ms, updated_at = now()
    where (excluded.checked_at, excluded.check_id) > (s.checked_at, s.check_id)`;
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
