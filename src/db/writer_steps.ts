/**
 * Steps of the writer between inserting a batch's checks and writing state and rollups: which checks this
 * transaction actually stored, and the fold of those checks into each site's state. Private to src/db.
 *
 * @module
 */
import type postgres from "postgres";
import { numberArray, textArray } from "./_arrays.ts";
import type { ResolvedCheck } from "./names.ts";
import type { RollupCheck } from "./rollups.ts";
import { foldSite, type SiteChanges, type SiteCheck, type SiteRows } from "./state.ts";

/** A check with its database ids, its location's included. */
export interface LocatedCheck extends ResolvedCheck {
  readonly locationId: number;
}

/**
 * The checks of `resolved` that this transaction inserted, each id once. When `stored` (the insert's row count)
 * equals the number of distinct ids, that is all of them; otherwise (an id stored by an earlier batch: a
 * producer retry published it twice) the rows this transaction wrote are told apart by their `xmin`.
 */
export async function insertedChecks(
  tx: postgres.TransactionSql,
  resolved: readonly LocatedCheck[],
  stored: number,
): Promise<LocatedCheck[]> {
  const seen = new Set<string>();
  const unique = resolved.filter((r) => !seen.has(r.id) && seen.add(r.id) !== undefined);
  if (unique.length === stored) return unique;
  const rows = await tx<{ id: string }[]>`
    select c.id::text from checks c
    join unnest(${numberArray(unique.map((r) => r.siteId))}::int4[],
                ${textArray(unique.map((r) => r.check.started_at))}::timestamptz[],
                ${textArray(unique.map((r) => r.id))}::uuid[]) as t(site_id, started_at, id)
      on c.site_id = t.site_id and c.started_at = t.started_at and c.id = t.id
    where c.xmin::text = (pg_current_xact_id()::text::int8 % 4294967296)::text`;
  const mine = new Set(rows.map((row) => row.id));
  return unique.filter((r) => mine.has(r.id));
}

/**
 * Folds the inserted checks into each site's rows. A check starting more than `maxFutureMs` after `now` (an
 * agent's clock far ahead) is left out: it would hold its location's state until that time.
 */
export function foldSites(
  rows: ReadonlyMap<number, SiteRows>,
  inserted: readonly LocatedCheck[],
  now: Date,
  maxFutureMs: number,
): Map<number, SiteChanges> {
  const horizon = BigInt(now.getTime() + maxFutureMs) * 1000n;
  const bySite = new Map<number, SiteCheck[]>();
  for (const r of inserted) {
    if (r.micros > horizon) continue;
    const list = bySite.get(r.siteId) ?? [];
    list.push({
      check: r.check,
      micros: r.micros,
      checkId: r.id,
      locationId: r.locationId,
      agentId: r.agentId,
    });
    bySite.set(r.siteId, list);
  }
  const changes = new Map<number, SiteChanges>();
  for (const [siteId, checks] of bySite) {
    changes.set(siteId, foldSite(rows.get(siteId)!, checks, now.getTime()));
  }
  return changes;
}

/** What the rollups need of a stored check. */
export function rollupCheck(r: LocatedCheck): RollupCheck {
  return {
    siteId: r.siteId,
    locationId: r.locationId,
    micros: r.micros,
    up: r.check.up,
    durationMs: r.check.duration_ms,
    errorKind: r.check.error?.kind ?? null,
  };
}
