/**
 * The arithmetic of per-location state, site state and incidents, as pure functions: the writer reads the stored
 * rows of a batch's sites, folds the batch's new checks in with {@linkcode foldSite}, and writes back what
 * changed (src/db/state_store.ts), all in its transaction.
 *
 * Rules:
 * - A location's state moves only forward in time, by its own checks (ordered by started_at, then check id). A
 *   late check (not newer than its location's latest) changes no state and no incident; it is still stored and
 *   counted in the rollups.
 * - A location is fresh when something was stored from it within 3 of its intervals of the batch's clock (the
 *   sink's, not the agent's). The site's state is derived from its fresh locations: up (none down), down (all
 *   down) or degraded. Staleness is judged again at read time (the views), so a site whose agents all died turns
 *   stale without any new message; going stale is not an incident (nothing was observed failing), and an open
 *   incident stays open while the site is stale.
 * - An incident opens at the check that made the site leave `up` and closes at the check that brought it back;
 *   its worst state is `down` if every fresh location was down at some point, and it lists every location that
 *   failed during it. Times never go backwards: a site's `since` and an incident's end are at least its start.
 *   (A late location can open one over an incident already closed; the store merges them once both are
 *   closed, src/db/state_store.ts.)
 *
 * @module
 */
import type { CheckResult, ErrorKind } from "../message.ts";

/** A site's state as the writer derives it (staleness is judged at read time). */
export type SiteState = "up" | "degraded" | "down";

/** Where a check stands in time: started_at in microseconds, then the check id (lower-case UUID text). */
export interface TimeKey {
  readonly micros: bigint;
  readonly checkId: string;
}

/** Orders two time keys: negative, zero or positive. */
export function compareTimeKeys(a: TimeKey, b: TimeKey): number {
  if (a.micros !== b.micros) return a.micros < b.micros ? -1 : 1;
  return a.checkId < b.checkId ? -1 : a.checkId > b.checkId ? 1 : 0;
}

/** One `location_state` row. */
export interface LocationState extends TimeKey {
  readonly locationId: number;
  readonly agentId: number;
  /** started_at of the latest check, RFC 3339. */
  readonly checkedAt: string;
  /** The sink's clock when the latest check was stored, epoch milliseconds. */
  readonly seenAtMs: number;
  readonly since: string;
  readonly sinceMicros: bigint;
  readonly consecutiveFailures: number;
  readonly intervalMs: number;
  readonly durationMs: number;
  readonly status: number | null;
  readonly up: boolean;
  readonly errorKind: ErrorKind | null;
  readonly errorMessage: string | null;
}

/** One `site_state` row. */
export interface SiteRecord {
  readonly state: SiteState;
  readonly since: string;
  readonly sinceMicros: bigint;
}

/** One `site_incidents` row; `id` null for one this batch opens. */
export interface Incident {
  readonly id: number | null;
  readonly startedAt: string;
  readonly startedMicros: bigint;
  readonly endedAt: string | null;
  readonly worst: "degraded" | "down";
  readonly locationIds: readonly number[];
  readonly firstErrorKind: ErrorKind | null;
  readonly firstErrorMessage: string | null;
}

/** A new check of the site, with its database ids. */
export interface SiteCheck extends TimeKey {
  readonly check: CheckResult;
  readonly locationId: number;
  readonly agentId: number;
}

/** What a site's stored rows are before the batch. */
export interface SiteRows {
  readonly locations: ReadonlyMap<number, LocationState>;
  readonly site: SiteRecord | null;
  readonly open: Incident | null;
}

/** What changed: rows to write (each only when it changed). */
export interface SiteChanges {
  /** New or moved location rows. */
  readonly locations: readonly LocationState[];
  /** The site's new state row, or null when unchanged. */
  readonly site: SiteRecord | null;
  /** The stored open incident if it changed (same id), then incidents this batch opened, in time order. */
  readonly incidents: readonly Incident[];
}

const WORSE = { degraded: 1, down: 2 } as const;

/** Whether something was stored from the location within 3 of its intervals of the batch's clock. */
function isFresh(location: LocationState, nowMs: number): boolean {
  return location.seenAtMs + 3 * location.intervalMs >= nowMs;
}

/**
 * Folds a site's new checks (any order; a check id at most once) into its stored rows, with the batch's clock
 * `nowMs`. Checks are applied in time order; a check not newer than its location's latest is skipped.
 *
 * @example
 * ```ts
 * declare const rows: SiteRows;
 * declare const checksOfOneSite: SiteCheck[];
 * const changes = foldSite(rows, checksOfOneSite, Date.now());
 * ```
 */
export function foldSite(rows: SiteRows, checks: readonly SiteCheck[], nowMs: number): SiteChanges {
  const locations = new Map(rows.locations);
  const moved = new Set<number>();
  let site = rows.site;
  let siteChanged = false;
  let open = rows.open;
  let openChanged = false;
  const incidents: Incident[] = [];
  const ordered = [...checks].sort(compareTimeKeys);
  for (const incoming of ordered) {
    const stored = locations.get(incoming.locationId);
    if (stored !== undefined && compareTimeKeys(incoming, stored) <= 0) continue; // late: no state change
    const { check } = incoming;
    const turned = stored === undefined || stored.up !== check.up;
    const next: LocationState = {
      locationId: incoming.locationId,
      agentId: incoming.agentId,
      micros: incoming.micros,
      checkId: incoming.checkId,
      checkedAt: check.started_at,
      seenAtMs: nowMs,
      since: turned ? check.started_at : stored.since,
      sinceMicros: turned ? incoming.micros : stored.sinceMicros,
      consecutiveFailures: check.up ? 0 : (turned ? 0 : stored.consecutiveFailures) + 1,
      intervalMs: check.interval_ms,
      durationMs: check.duration_ms,
      status: check.status,
      up: check.up,
      errorKind: check.error?.kind ?? null,
      errorMessage: check.error?.message ?? null,
    };
    locations.set(incoming.locationId, next);
    moved.add(incoming.locationId);

    // Counted, not listed: this runs for every check, and the fresh locations that are down are listed only
    // when an incident opens.
    let fresh = 0;
    let down = 0;
    for (const l of locations.values()) {
      if (!isFresh(l, nowMs)) continue;
      fresh++;
      if (!l.up) down++;
    }
    const derived: SiteState = down === 0 ? "up" : down === fresh ? "down" : "degraded";
    const previous = site?.state ?? "up";
    if (site === null || derived !== previous) {
      const keep = site !== null && site.sinceMicros > incoming.micros;
      site = {
        state: derived,
        since: keep ? site!.since : check.started_at,
        sinceMicros: keep ? site!.sinceMicros : incoming.micros,
      };
      siteChanged = true;
    }
    if (derived === "up") {
      if (open !== null) {
        const ended = incoming.micros >= open.startedMicros ? check.started_at : open.startedAt;
        const closed = { ...open, endedAt: ended };
        if (closed.id === null) incidents.push(closed);
        else {
          openChanged = false;
          incidents.unshift(closed);
        }
        open = null;
      }
      continue;
    }
    if (open === null) {
      const downs = [...locations.values()].filter((l) => !l.up && isFresh(l, nowMs));
      const first = check.up ? downs.sort((a, b) => (a.sinceMicros < b.sinceMicros ? -1 : 1))[0]! : null;
      open = {
        id: null,
        startedAt: check.started_at,
        startedMicros: incoming.micros,
        endedAt: null,
        worst: derived,
        locationIds: downs.map((l) => l.locationId).sort((a, b) => a - b),
        firstErrorKind: first === null ? check.error?.kind ?? null : first.errorKind,
        firstErrorMessage: first === null ? check.error?.message ?? null : first.errorMessage,
      };
      continue;
    }
    const worst = WORSE[derived] > WORSE[open.worst] ? derived : open.worst;
    const seen = check.up || open.locationIds.includes(incoming.locationId)
      ? open.locationIds
      : [...open.locationIds, incoming.locationId].sort((a, b) => a - b);
    if (worst !== open.worst || seen !== open.locationIds) {
      open = { ...open, worst, locationIds: seen };
      if (open.id !== null) openChanged = true;
    }
  }
  if (open !== null) {
    if (open.id === null) incidents.push(open);
    else if (openChanged) incidents.unshift(open);
  }
  return {
    locations: [...moved].map((id) => locations.get(id)!),
    site: siteChanged ? site : null,
    incidents,
  };
}
