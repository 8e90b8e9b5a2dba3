/**
 * Steps of the writer between inserting a batch's checks and writing state and rollups: which checks this
 * transaction actually stored, and the fold of those checks into each site's state and each location's
 * current-hour rollup counts. Private to src/db.
 *
 * @module
 */
import type postgres from "postgres";
import { numberArray, textArray } from "./_arrays.ts";
import type { ResolvedCheck } from "./names.ts";
import { accumulate, EMPTY_ACCUMULATOR, type RollupCheck, type RollupDelta } from "./rollups.ts";
import { compareTimeKeys, foldSite, type SiteChanges } from "./state.ts";
import type { StoredSite } from "./state_store.ts";
import type { LocationRow } from "./_location_rows.ts";

/** A check with its database ids, its location's included. */
export interface LocatedCheck extends ResolvedCheck {
  readonly locationId: number;
}

/**
 * The checks as the table keys them (site, start time and id: a producer's retry repeats all three), the first
 * of each. An id that comes again with another site or start time is another row, as it would be in a later
 * batch, so the checks inserted, and folded into state and rollups, are the same ones.
 */
export function distinctChecks(resolved: readonly LocatedCheck[]): LocatedCheck[] {
  const firstWithId = new Map<string, LocatedCheck>();
  // Keys of the checks whose id came with another site or start time before (rare: made only then).
  let others: Set<string> | null = null;
  return resolved.filter((r) => {
    const first = firstWithId.get(r.checkId);
    if (first === undefined) {
      firstWithId.set(r.checkId, r);
      return true;
    }
    if (first.siteId === r.siteId && first.micros === r.micros) return false;
    const key = `${r.siteId} ${r.micros} ${r.checkId}`;
    others ??= new Set();
    if (others.has(key)) return false;
    others.add(key);
    return true;
  });
}

/**
 * The checks of `unique` (distinct keys) that this transaction inserted, given `inserted`, the insert's row
 * count: the rows whose `xmin` is this transaction.
 */
export async function insertedChecks(
  tx: postgres.TransactionSql,
  unique: readonly LocatedCheck[],
  inserted: number,
): Promise<LocatedCheck[]> {
  if (unique.length === inserted) return [...unique];
  const rows = await tx<{ i: number }[]>`
    select t.i::int4 as i from checks c
    join unnest(${numberArray(unique.map((r) => r.siteId))}::int4[],
                ${textArray(unique.map((r) => r.check.started_at))}::timestamptz[],
                ${
    textArray(unique.map((r) => r.checkId))
  }::uuid[]) with ordinality as t(site_id, started_at, id, i)
      on c.site_id = t.site_id and c.started_at = t.started_at and c.id = t.id
    where c.xmin::text = (pg_current_xact_id()::text::int8 % 4294967296)::text`;
  const mine = new Set(rows.map((row) => row.i - 1));
  return unique.filter((_, i) => mine.has(i));
}

/** What a batch changes in state and rollups. */
export interface BatchChanges {
  readonly sites: Map<number, SiteChanges>;
  readonly locations: LocationRow[];
  /** Rollup counts to add, per hour (checks of earlier hours, and hours the accumulators moved past). */
  readonly hourly: RollupDelta[];
}

/**
 * Folds the inserted checks into each site's rows and each location's current-hour counts. A check starting
 * more than `maxFutureMs` after `now` (an agent's clock far ahead) changes no state and is counted in the
 * rollups directly: it would hold its location's state, or its counts, until that time.
 */
export function foldSites(
  stored: ReadonlyMap<number, StoredSite>,
  inserted: readonly LocatedCheck[],
  now: Date,
  maxFutureMs: number,
): BatchChanges {
  const horizon = BigInt(now.getTime() + maxFutureMs) * 1000n;
  const bySite = new Map<number, LocatedCheck[]>();
  for (const r of inserted) {
    const list = bySite.get(r.siteId) ?? [];
    list.push(r);
    bySite.set(r.siteId, list);
  }
  const sites = new Map<number, SiteChanges>();
  const locations: LocationRow[] = [];
  const hourly: RollupDelta[] = [];
  for (const [siteId, checks] of bySite) {
    if (checks.length > 1) checks.sort(compareTimeKeys);
    const rows = stored.get(siteId) ??
      { locations: new Map(), accumulators: new Map(), site: null, open: null };
    // A located check is a SiteCheck as it is: handed over without a copy.
    const timely = checks.some((r) => r.micros > horizon)
      ? checks.filter((r) => r.micros <= horizon)
      : checks;
    const changes = foldSite(rows, timely, now.getTime());
    sites.set(siteId, changes);
    const moved = new Map(changes.locations.map((l) => [l.locationId, l]));
    const byLocation = new Map<number, LocatedCheck[]>();
    for (const r of checks) {
      const list = byLocation.get(r.locationId);
      if (list === undefined) byLocation.set(r.locationId, [r]);
      else list.push(r);
    }
    for (const [locationId, list] of byLocation) {
      const state = moved.get(locationId) ?? rows.locations.get(locationId);
      const before = rows.accumulators.get(locationId) ?? EMPTY_ACCUMULATOR;
      const { accumulator, deltas } = accumulate(before, list.map(rollupCheck), horizon, state !== undefined);
      hourly.push(...deltas);
      if (state === undefined || (accumulator === before && !moved.has(locationId))) continue;
      const previous = rows.locations.get(locationId);
      locations.push({
        siteId,
        state,
        accumulator,
        previous: previous === undefined ? null : { checkId: previous.checkId, accChecks: before.checks },
      });
    }
  }
  return { sites, locations, hourly };
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

/**
 * Each folded site's rows as the batch leaves them: what it started from (`stored`) with the batch's changes
 * applied, and the id of the incident it opened and left open (`openedIds`, from the insert).
 */
export function committedSites(
  stored: ReadonlyMap<number, StoredSite>,
  changes: BatchChanges,
  openedIds: ReadonlyMap<number, number>,
): Map<number, StoredSite> {
  const result = new Map<number, StoredSite>();
  for (const [siteId, site] of changes.sites) {
    const before = stored.get(siteId);
    let open = before?.open ?? null;
    for (const incident of site.incidents) {
      if (incident.id !== null) open = incident.endedAt === null ? incident : null;
      else if (incident.endedAt === null) open = { ...incident, id: openedIds.get(siteId)! };
    }
    result.set(siteId, {
      locations: new Map(before?.locations),
      accumulators: new Map(before?.accumulators),
      site: site.site ?? before?.site ?? null,
      open,
    });
  }
  for (const row of changes.locations) {
    const site = result.get(row.siteId)!;
    site.locations.set(row.state.locationId, row.state);
    site.accumulators.set(row.state.locationId, row.accumulator);
  }
  return result;
}
