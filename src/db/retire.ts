/**
 * Retiring a site that is no longer probed: its current state goes (so the status page, `monitor status` and
 * `/metrics` stop showing it as stale for ever), its history stays (raw checks, rollups and incidents, for
 * reports over the time it was probed). A check of the site that arrives later brings it back.
 *
 * @module
 */
import type postgres from "postgres";
import { transaction } from "./_transaction.ts";

/** What {@linkcode retireSite} did; null when no such site was ever stored. */
export interface Retired {
  /** The (site, location) state rows removed. */
  readonly locations: number;
  /** Whether an open incident was closed (at the time of retiring). */
  readonly closedIncident: boolean;
}

/**
 * Retires the site named `site`, in one transaction: closes its open incident now (merged with one it
 * overlaps, as the writer does), and removes its location and site state rows. A running sink notices the
 * removed rows on the site's next check (its writes are guarded by the rows they replace) and starts afresh.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const retired = await retireSite(sql, "old-shop"); // { locations: 2, closedIncident: false }, or null
 * ```
 */
export async function retireSite(sql: postgres.Sql, site: string): Promise<Retired | null> {
  return await transaction(sql, async (tx) => {
    const [found] = await tx<{ id: number }[]>`select id from sites where name = ${site} for update`;
    if (found === undefined) return null;
    const closed = await tx`
      update site_incidents set ended_at = greatest(now(), started_at)
      where site_id = ${found.id} and ended_at is null`;
    if (closed.count > 0) {
      await tx`select merge_overlapping_incidents(array[${found.id}::int4], '-infinity', 'infinity')`;
    }
    const locations = await tx`delete from location_state where site_id = ${found.id}`;
    await tx`delete from site_state where site_id = ${found.id}`;
    return { locations: locations.count, closedIncident: closed.count > 0 };
  });
}
