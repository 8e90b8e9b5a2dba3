/**
 * `site_status`, the latest check of each site: the arithmetic (which checks are newer than the stored row, and
 * how a run of them moves `state_since` and `consecutive_failures`) as a pure function, and the statements that
 * apply it inside the writer's transaction.
 *
 * @module
 */
import type postgres from "postgres";
import { boolArray, numberArray, textArray } from "./_arrays.ts";
import type { CheckResult } from "../message.ts";
import { all } from "./_pipeline.ts";
import { cleanText, timestampMicros } from "./_values.ts";
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
 * Moves the `site_status` rows of the checks' sites forward: locks the stored rows (in site order), folds the
 * checks in with {@linkcode advanceStatus}, and upserts the outcome. Checks starting after `horizonMicros` are
 * left out. Runs inside the writer's transaction.
 *
 * @example
 * ```ts
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
    const micros = timestampMicros(resolved.check.started_at);
    if (micros > horizonMicros) continue;
    const list = bySite.get(resolved.siteId) ?? [];
    list.push({
      ...resolved,
      micros,
      checkId: resolved.id,
      startedAt: resolved.check.started_at,
      up: resolved.check.up,
    });
    bySite.set(resolved.siteId, list);
  }
  const siteIds = [...bySite.keys()].sort((a, b) => a - b);
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
