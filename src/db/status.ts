/**
 * `site_status`, the latest check of each site: the arithmetic (which checks are newer than the stored row, and
 * how a run of them moves `state_since` and `consecutive_failures`) as a pure function, and the statements that
 * apply it inside the writer's transaction.
 *
 * @module
 */
import type postgres from "postgres";
import type { CheckResult } from "../message.ts";
import { boolArray, numberArray, textArray } from "./_arrays.ts";
import { all } from "./_pipeline.ts";
import { cleanText } from "./_values.ts";
import type { ResolvedCheck } from "./names.ts";

/** Where a check or a stored status stands in time: started_at in microseconds (as PostgreSQL keeps it), then
 * the check id (lower-case UUID text, which sorts as PostgreSQL sorts uuid) to break ties. */
export interface TimeKey {
  readonly micros: bigint;
  readonly checkId: string;
}

/** The part of a stored `site_status` row the arithmetic needs. */
export interface StoredStatus extends TimeKey {
  readonly up: boolean;
  readonly consecutiveFailures: number;
}

/** One check of the site, as far as the status is concerned. */
export interface StatusInput extends TimeKey {
  readonly startedAt: string;
  readonly up: boolean;
}

/** The new status of a site: its latest check, and how long the current state has lasted. */
export interface StatusOutcome<T extends StatusInput> {
  readonly latest: T;
  /** started_at of the first check of the current run, or null to keep the stored `state_since`. */
  readonly stateSince: string | null;
  readonly consecutiveFailures: number;
}

/** Orders two time keys: negative, zero or positive. */
export function compareTimeKeys(a: TimeKey, b: TimeKey): number {
  if (a.micros !== b.micros) return a.micros < b.micros ? -1 : 1;
  return a.checkId < b.checkId ? -1 : a.checkId > b.checkId ? 1 : 0;
}

/**
 * Folds a site's checks into its stored status: checks not newer than the stored latest are ignored (the status
 * never goes back in time); the rest are applied in time order. Returns null when no check is newer.
 *
 * @example
 * ```ts
 * declare const stored: StoredStatus | null;
 * declare const checksOfOneSite: StatusInput[];
 * const outcome = advanceStatus(stored, checksOfOneSite);
 * // { latest, stateSince: "2026-11-23T10:00:00Z", consecutiveFailures: 2 }
 * ```
 */
export function advanceStatus<T extends StatusInput>(
  stored: StoredStatus | null,
  checks: readonly T[],
): StatusOutcome<T> | null {
  const newer = checks.filter((check) => stored === null || compareTimeKeys(check, stored) > 0)
    .sort(compareTimeKeys);
  let latest: T | null = null;
  let up = stored?.up ?? null;
  let stateSince: string | null = null;
  let failures = stored?.consecutiveFailures ?? 0;
  for (const check of newer) {
    if (check.up !== up) {
      up = check.up;
      stateSince = check.startedAt;
      failures = 0;
    }
    if (!check.up) failures++;
    latest = check;
  }
  return latest === null ? null : { latest, stateSince, consecutiveFailures: failures };
}

/**
 * Moves the `site_status` rows of the checks' sites forward, with the result of {@linkcode advanceStatus},
 * inside the writer's transaction.
 *
 * Usually one UPDATE does it (every check of the site newer than its row); a site without a row yet, or with a
 * check older than its row, takes a second pass that locks the rows (in site order), folds the checks in, and
 * updates or inserts.
 *
 * @param checks A check id repeated here counts once.
 * @param horizonMicros Checks starting after this are left out.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import type { ResolvedCheck } from "./names.ts";
 * declare const tx: postgres.TransactionSql;
 * declare const resolvedChecks: ResolvedCheck[];
 * await updateSiteStatus(tx, resolvedChecks, BigInt(Date.now() + 600_000) * 1000n);
 * ```
 */
export async function updateSiteStatus(
  tx: postgres.TransactionSql,
  checks: readonly ResolvedCheck[],
  horizonMicros: bigint,
): Promise<void> {
  const bySite = new Map<number, (ResolvedCheck & StatusInput)[]>();
  const seen = new Set<string>();
  for (const resolved of checks) {
    if (seen.has(resolved.id)) continue; // a check twice in one batch counts once
    seen.add(resolved.id);
    if (resolved.micros > horizonMicros) continue;
    const list = bySite.get(resolved.siteId) ?? [];
    list.push({
      check: resolved.check,
      micros: resolved.micros,
      id: resolved.id,
      siteId: resolved.siteId,
      agentId: resolved.agentId,
      checkId: resolved.id,
      startedAt: resolved.check.started_at,
      up: resolved.check.up,
    });
    bySite.set(resolved.siteId, list);
  }
  for (const list of bySite.values()) {
    let ordered = true;
    for (let i = 1; i < list.length && ordered; i++) ordered = compareTimeKeys(list[i - 1]!, list[i]!) < 0;
    if (!ordered) list.sort(compareTimeKeys);
  }
  const updated = await updateInOneStep(
    tx,
    [...bySite.entries()].sort(([a], [b]) => a - b).map(([, list]) => list),
  );
  const siteIds = [...bySite.keys()].filter((siteId) => !updated.has(siteId)).sort((a, b) => a - b);
  if (siteIds.length === 0) return;
  const rows = await tx<
    { site_id: number; check_id: string; micros: string; up: boolean; failures: number }[]
  >`
    select site_id, check_id::text, (extract(epoch from checked_at) * 1000000)::int8 as micros, up,
           consecutive_failures as failures
    from site_status where site_id = any(${numberArray(siteIds)}::int4[])
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
  const existing = outcomes.filter((outcome) => stored.has(outcome.latest.siteId));
  const added = outcomes.filter((outcome) => !stored.has(outcome.latest.siteId));
  const values = (list: typeof outcomes) => {
    const column = <T>(pick: (outcome: typeof outcomes[number]) => T): T[] => list.map(pick);
    const latest = <T>(pick: (check: CheckResult) => T): T[] =>
      list.map((outcome) => pick(outcome.latest.check));
    return tx`
      unnest(
        ${numberArray(column((o) => o.latest.siteId))}::int4[],
        ${textArray(column((o) => o.latest.id))}::uuid[],
        ${textArray(latest((c) => c.started_at))}::timestamptz[],
        ${numberArray(column((o) => o.latest.agentId))}::int4[],
        ${boolArray(latest((c) => c.up))}::bool[],
        ${numberArray(latest((c) => c.status))}::int2[],
        ${textArray(column((o) => o.stateSince))}::timestamptz[],
        ${numberArray(column((o) => o.consecutiveFailures))}::int4[],
        ${textArray(latest((c) => c.error?.kind ?? null))}::check_error_kind[],
        ${textArray(latest((c) => c.error === null ? null : cleanText(c.error.message)))}::text[],
        ${numberArray(latest((c) => c.duration_ms))}::real[]
      ) as t(site_id, check_id, checked_at, agent_id, up, status, state_since, failures, error_kind, error_message,
             duration_ms)`;
  };
  // The rows are locked already: a plain UPDATE (much cheaper than an upsert); a null state_since keeps the
  // stored one. The time condition repeats the "never back in time" rule in SQL.
  const update = existing.length === 0 ? null : tx`
    update site_status s set
      check_id = t.check_id, checked_at = t.checked_at, agent_id = t.agent_id, up = t.up, status = t.status,
      state_since = coalesce(t.state_since, s.state_since), consecutive_failures = t.failures,
      error_kind = t.error_kind, error_message = t.error_message, duration_ms = t.duration_ms, updated_at = now()
    from ${values(existing)}
    where s.site_id = t.site_id and (t.checked_at, t.check_id) > (s.checked_at, s.check_id)`;
  // A site's first status; a writer that got there first in the meantime is overtaken only by a newer check.
  const insert = added.length === 0 ? null : tx`
    insert into site_status as s (site_id, check_id, checked_at, agent_id, up, status, state_since,
                                  consecutive_failures, error_kind, error_message, duration_ms)
    select * from ${values(added)}
    order by site_id
    on conflict (site_id) do update set
      check_id = excluded.check_id, checked_at = excluded.checked_at, agent_id = excluded.agent_id,
      up = excluded.up, status = excluded.status, state_since = excluded.state_since,
      consecutive_failures = excluded.consecutive_failures, error_kind = excluded.error_kind,
      error_message = excluded.error_message, duration_ms = excluded.duration_ms, updated_at = now()
    where (excluded.checked_at, excluded.check_id) > (s.checked_at, s.check_id)`;
  await all([update, insert]);
}

/**
 * The common case in one statement, without reading first: every check of the site is newer than its stored
 * row. The batch's checks of a site (in time order) end in a run of up (or down) checks; the stored row extends
 * that run when the whole batch is one run of the stored state. Returns the sites updated; the others (no row
 * yet, or a check older than the stored one) take the careful path. The rows are locked in the order the plan
 * meets them, not necessarily site order; two writers only meet on a site if it moved between Kafka
 * partitions (its checks are keyed by name), and a deadlock then is detected by PostgreSQL (SQLSTATE 40P01) and
 * the batch retried.
 */
async function updateInOneStep(
  tx: postgres.TransactionSql,
  groups: readonly (readonly (ResolvedCheck & StatusInput)[])[],
): Promise<Set<number>> {
  const runs = groups.map((checks) => {
    const latest = checks[checks.length - 1]!;
    let start = checks.length - 1;
    while (start > 0 && checks[start - 1]!.up === latest.up) start--;
    return {
      first: checks[0]!,
      latest,
      runStart: checks[start]!.startedAt,
      runLength: checks.length - start,
      whole: start === 0,
    };
  });
  const latest = <T>(pick: (check: CheckResult) => T): T[] => runs.map((run) => pick(run.latest.check));
  const rows = await tx<{ site_id: number }[]>`
    update site_status s set
      check_id = t.check_id, checked_at = t.checked_at, agent_id = t.agent_id, up = t.up, status = t.status,
      state_since = case when t.whole and s.up = t.up then s.state_since else t.run_start end,
      consecutive_failures = case
        when t.up then 0
        when t.whole and not s.up then s.consecutive_failures + t.run_length
        else t.run_length
      end,
      error_kind = t.error_kind, error_message = t.error_message, duration_ms = t.duration_ms, updated_at = now()
    from unnest(
      ${numberArray(runs.map((run) => run.latest.siteId))}::int4[],
      ${textArray(runs.map((run) => run.latest.id))}::uuid[],
      ${textArray(latest((c) => c.started_at))}::timestamptz[],
      ${numberArray(runs.map((run) => run.latest.agentId))}::int4[],
      ${boolArray(latest((c) => c.up))}::bool[],
      ${numberArray(latest((c) => c.status))}::int2[],
      ${textArray(latest((c) => c.error?.kind ?? null))}::check_error_kind[],
      ${textArray(latest((c) => c.error === null ? null : cleanText(c.error.message)))}::text[],
      ${numberArray(latest((c) => c.duration_ms))}::real[],
      ${textArray(runs.map((run) => run.runStart))}::timestamptz[],
      ${numberArray(runs.map((run) => run.runLength))}::int4[],
      ${boolArray(runs.map((run) => run.whole))}::bool[],
      ${textArray(runs.map((run) => run.first.startedAt))}::timestamptz[],
      ${textArray(runs.map((run) => run.first.id))}::uuid[]
    ) as t(site_id, check_id, checked_at, agent_id, up, status, error_kind, error_message, duration_ms,
           run_start, run_length, whole, first_at, first_id)
    where s.site_id = t.site_id and (t.first_at, t.first_id) > (s.checked_at, s.check_id)
    returning s.site_id`;
  return new Set(rows.map((row) => row.site_id));
}
