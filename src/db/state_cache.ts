/**
 * The sink's copy of the state rows it last committed (`location_state`, `site_state` and the open incident of
 * each site), so that a batch's sites need not be read back from the database before the fold. Dropping that
 * read (and the fast path it replaced) cut the sink's PostgreSQL CPU per check by a fifth when sites flap
 * (bench/sink/memory.ts).
 *
 * Only the writer changes these rows, and all checks of a site are in one Kafka partition (the key is the site's
 * name), which one member of the group writes at a time. So the copy is what the database holds as long as this
 * sink keeps its partitions; the consumer clears it whenever the group's assignment changes. The copy is also
 * never trusted blindly: every row the writer writes from it is guarded by what it replaces (a location's check
 * id and current-hour count, a site's state and since, the open incident's id), and a mismatch fails the batch
 * with SQLSTATE 40001, which is retried from the database.
 *
 * A batch takes its sites out of the copy and puts back what it committed: a batch that fails leaves them out,
 * and they are read from the database next time. Private to src/db and the sink.
 *
 * @module
 */
import type { Accumulator } from "./rollups.ts";
import type { LocationState } from "./state.ts";
import type { StoredSite } from "./state_store.ts";

/** How many sites the copy holds by default: about 1 KiB each with two locations. */
export const STATE_CACHE_SITES = 50_000;

/**
 * A site's rows as the copy keeps them: lists instead of maps. A `Map` costs about 250 bytes even with one
 * entry, and a site has one for its locations, one for their counts and two per location in the counts (error
 * kinds and latency buckets): half of what the copy held. Counts are flat [key, count, key, count, ...] lists.
 */
interface KeptSite {
  readonly locations: readonly LocationState[];
  readonly counts: readonly KeptCounts[];
  readonly site: StoredSite["site"];
  readonly open: StoredSite["open"];
}

interface KeptCounts {
  readonly locationId: number;
  readonly hour: bigint | null;
  readonly checks: number;
  readonly upChecks: number;
  readonly errors: readonly number[];
  readonly latency: readonly number[];
}

function flatten(counts: ReadonlyMap<number, number>): number[] {
  const flat: number[] = [];
  for (const [key, count] of counts) flat.push(key, count);
  return flat;
}

function unflatten(flat: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < flat.length; i += 2) counts.set(flat[i]!, flat[i + 1]!);
  return counts;
}

function keep(rows: StoredSite): KeptSite {
  return {
    locations: [...rows.locations.values()],
    counts: [...rows.accumulators].map(([locationId, counts]) => ({
      locationId,
      hour: counts.hour,
      checks: counts.checks,
      upChecks: counts.upChecks,
      errors: flatten(counts.errors),
      latency: flatten(counts.latency),
    })),
    site: rows.site,
    open: rows.open,
  };
}

/** The rows of a kept site, in maps of their own (a batch may change them). */
function restore(kept: KeptSite): StoredSite {
  return {
    locations: new Map(kept.locations.map((location) => [location.locationId, location])),
    accumulators: new Map(kept.counts.map((counts): [number, Accumulator] => [counts.locationId, {
      hour: counts.hour,
      checks: counts.checks,
      upChecks: counts.upChecks,
      errors: unflatten(counts.errors),
      latency: unflatten(counts.latency),
    }])),
    site: kept.site,
    open: kept.open,
  };
}

/** The state rows of the sites this sink wrote last, by site id. */
export class StateCache {
  readonly #sites = new Map<number, KeptSite>();
  /** Batches under way per site, and the sites two of them shared (put back by neither). */
  readonly #inFlight = new Map<number, number>();
  readonly #shared = new Set<number>();
  #generation = 0;

  /** @param maxSites Sites held at most; beyond that, sites are read from the database. */
  constructor(readonly maxSites: number = STATE_CACHE_SITES) {}

  /** Changes whenever the copy is cleared; a batch begun before puts nothing back. */
  get generation(): number {
    return this.#generation;
  }

  /** Sites held. */
  get size(): number {
    return this.#sites.size;
  }

  /** Forgets every site: another writer may change them from now on. */
  clear(): void {
    this.#sites.clear();
    this.#generation++;
  }

  /**
   * Takes these sites out of the copy for a batch: those it held, and the ids of those it did not. The batch
   * calls {@linkcode release} with the same ids when it ends, committed or not.
   */
  take(siteIds: readonly number[]): { held: Map<number, StoredSite>; missing: number[] } {
    const held = new Map<number, StoredSite>();
    const missing: number[] = [];
    for (const id of siteIds) {
      const batches = this.#inFlight.get(id) ?? 0;
      // Two batches of one site at once (possible only while a topic's partition count changes): what either
      // read may miss the other's rows, so neither puts it back.
      if (batches > 0) this.#shared.add(id);
      this.#inFlight.set(id, batches + 1);
      const site = this.#sites.get(id);
      if (site === undefined) missing.push(id);
      else {
        held.set(id, restore(site));
        this.#sites.delete(id);
      }
    }
    return { held, missing };
  }

  /** Puts back the committed rows of a batch begun at `generation`, unless the copy was cleared since. */
  put(generation: number, sites: ReadonlyMap<number, StoredSite>): void {
    if (generation !== this.#generation) return;
    for (const [id, site] of sites) {
      if (this.#sites.size >= this.maxSites) return;
      if (!this.#shared.has(id)) this.#sites.set(id, keep(site));
    }
  }

  /** Ends a batch's hold on the sites it took. */
  release(siteIds: readonly number[]): void {
    for (const id of siteIds) {
      const batches = this.#inFlight.get(id)! - 1;
      if (batches > 0) this.#inFlight.set(id, batches);
      else {
        this.#inFlight.delete(id);
        this.#shared.delete(id);
      }
    }
  }
}
