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
import { decodeSite, encodeSite } from "./_site_codec.ts";
import type { StoredSite } from "./state_store.ts";

/**
 * How much the copy holds by default, in bytes of its text (./_site_codec.ts): about 900 bytes a site with
 * three locations (measured while draining bench/sink/memory.ts's topic), so some 37,000 sites. Beyond it,
 * sites are read from the database.
 */
export const STATE_CACHE_BYTES = 32 * 1024 * 1024;

/** What a site's text costs to hold: V8 keeps text in one byte per character unless a character needs two. */
function cost(text: string): number {
  // deno-lint-ignore no-control-regex
  return (/[^\x00-\xff]/.test(text) ? 2 * text.length : text.length) + PER_SITE_BYTES;
}
/** The string's header and the map's entry. */
const PER_SITE_BYTES = 48;

/** The state rows of the sites this sink wrote last, by site id. */
export class StateCache {
  readonly #sites = new Map<number, string>();
  #bytes = 0;
  /** Batches under way per site, and the sites two of them shared (put back by neither). */
  readonly #inFlight = new Map<number, number>();
  readonly #shared = new Set<number>();
  #generation = 0;

  /**
   * @param maxBytes Bytes held at most (see {@linkcode STATE_CACHE_BYTES}); beyond that, sites are read from
   *   the database.
   */
  constructor(readonly maxBytes: number = STATE_CACHE_BYTES) {}

  /** Changes whenever the copy is cleared; a batch begun before puts nothing back. */
  get generation(): number {
    return this.#generation;
  }

  /** Sites held. */
  get size(): number {
    return this.#sites.size;
  }

  /** Bytes held, as {@linkcode STATE_CACHE_BYTES} counts them. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Forgets every site: another writer may change them from now on. */
  clear(): void {
    this.#sites.clear();
    this.#bytes = 0;
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
        held.set(id, decodeSite(site));
        this.#sites.delete(id);
        this.#bytes -= cost(site);
      }
    }
    return { held, missing };
  }

  /** Puts back the committed rows of a batch begun at `generation`, unless the copy was cleared since. */
  put(generation: number, sites: ReadonlyMap<number, StoredSite>): void {
    if (generation !== this.#generation) return;
    for (const [id, site] of sites) {
      if (this.#bytes >= this.maxBytes) return;
      if (this.#shared.has(id)) continue;
      const text = encodeSite(site);
      const previous = this.#sites.get(id);
      if (previous !== undefined) {
        this.#sites.delete(id);
        this.#bytes -= cost(previous);
      }
      const bytes = cost(text);
      if (this.#bytes + bytes > this.maxBytes) continue;
      this.#sites.set(id, text);
      this.#bytes += bytes;
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
