/**
 * The statements behind {@linkcode foldSite}: read and lock the `location_state`, `site_state` and open
 * `site_incidents` rows of a batch's sites, and write back what the fold changed. Runs in the writer's
 * transaction, so state and incidents move exactly once per stored check, like the rows.
 *
 * @module
 */
import type postgres from "postgres";
import type { ErrorKind } from "../message.ts";
import { numberArray, textArray } from "./_arrays.ts";
import { all } from "./_pipeline.ts";
import { cleanText, microsToTimestamp } from "./_values.ts";
import { type Accumulator, parseCounts } from "./rollups.ts";
import type { Incident, LocationState, SiteChanges, SiteRecord, SiteRows, SiteState } from "./state.ts";
import { type LocationRow, movedUnderneath, writeLocations } from "./_location_rows.ts";

/** A site's stored rows: state, open incident, and each location's current-hour rollup counts. */
export interface StoredSite extends SiteRows {
  readonly locations: Map<number, LocationState>;
  readonly accumulators: Map<number, Accumulator>;
  site: SiteRecord | null;
  open: Incident | null;
}

/**
 * Reads the stored rows of the sites with these ids (by site id; a site without rows is absent); locks the open
 * incidents (in site order). The ids are matched with `= any(…)`, an index condition whatever the planner
 * guesses of the array's length (a join on an unnested array, guessed at 10 rows, was planned as a loop over
 * every open incident, 140 ms a batch once a few thousand were open). The state rows are not locked:
 * all checks of a site are in one Kafka partition (the key is the site's name), and the writer already holds
 * that partition's offsets row, so no other writer folds the same site's checks at the same time; should that
 * ever happen (the topic's partition count changed), {@linkcode writeSiteChanges} notices that a row moved and
 * fails the batch with SQLSTATE 40001, which is retried.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const tx: postgres.TransactionSql;
 * const rows = await readSiteRows(tx, [1, 2]); // Map { 1 => { locations, accumulators, site, open } }
 * ```
 */
export async function readSiteRows(
  tx: postgres.TransactionSql,
  siteIds: readonly number[],
): Promise<Map<number, StoredSite>> {
  const ids = numberArray(siteIds);
  const [locationRows, siteRows, incidentRows] = await all([
    tx<{
      site_id: number;
      location_id: number;
      agent_id: number;
      check_id: string;
      micros: string;
      seen_ms: string;
      since_micros: string;
      consecutive_failures: number;
      interval_ms: number;
      duration_ms: number;
      status: number | null;
      up: boolean;
      error_kind: ErrorKind | null;
      error_message: string | null;
      acc_micros: string | null;
      acc_checks: number;
      acc_up_checks: number;
      acc_error_counts: string | null;
      acc_latency: string | null;
    }[]>`
      select site_id, location_id, agent_id, check_id::text, consecutive_failures, interval_ms, duration_ms,
             status, up, error_kind, error_message,
             (extract(epoch from checked_at) * 1000000)::int8 as micros,
             (extract(epoch from seen_at) * 1000)::int8 as seen_ms,
             (extract(epoch from since) * 1000000)::int8 as since_micros,
             (extract(epoch from acc_hour) * 1000000)::int8 as acc_micros, acc_checks, acc_up_checks,
             acc_error_counts::text, acc_latency::text
      from location_state
      where site_id = any(${ids}::int4[])
      order by site_id, location_id`,
    tx<{ site_id: number; state: SiteState; since_micros: string }[]>`
      select site_id, state, (extract(epoch from since) * 1000000)::int8 as since_micros
      from site_state
      where site_id = any(${ids}::int4[])
      order by site_id
      for update`,
    tx<{
      id: string;
      site_id: number;
      started_micros: string;
      worst_state: "degraded" | "down";
      /** Comma-separated: the sink's connections do not fetch array types (see connect.ts). */
      location_ids: string;
      first_error_kind: ErrorKind | null;
      first_error_message: string | null;
    }[]>`
      select id, site_id, (extract(epoch from started_at) * 1000000)::int8 as started_micros, worst_state,
             array_to_string(location_ids, ',') as location_ids, first_error_kind, first_error_message
      from site_incidents
      where site_id = any(${ids}::int4[])
        and ended_at is null
      order by site_id
      for update`,
  ]);
  const result = new Map<number, StoredSite>();
  const of = (siteId: number) => {
    let site = result.get(siteId);
    if (site === undefined) {
      site = { locations: new Map(), accumulators: new Map(), site: null, open: null };
      result.set(siteId, site);
    }
    return site;
  };
  for (const row of locationRows) {
    const micros = BigInt(row.micros);
    const sinceMicros = BigInt(row.since_micros);
    of(row.site_id).locations.set(row.location_id, {
      locationId: row.location_id,
      agentId: row.agent_id,
      micros,
      checkId: row.check_id,
      checkedAt: microsToTimestamp(micros),
      seenAtMs: Number(row.seen_ms),
      since: microsToTimestamp(sinceMicros),
      sinceMicros,
      consecutiveFailures: row.consecutive_failures,
      intervalMs: row.interval_ms,
      durationMs: row.duration_ms,
      status: row.status,
      up: row.up,
      errorKind: row.error_kind,
      errorMessage: row.error_message,
    });
    of(row.site_id).accumulators.set(row.location_id, {
      hour: row.acc_micros === null ? null : BigInt(row.acc_micros),
      checks: row.acc_checks,
      upChecks: row.acc_up_checks,
      errors: parseCounts(row.acc_error_counts),
      latency: parseCounts(row.acc_latency),
    });
  }
  for (const row of siteRows) {
    const sinceMicros = BigInt(row.since_micros);
    of(row.site_id).site = { state: row.state, since: microsToTimestamp(sinceMicros), sinceMicros };
  }
  for (const row of incidentRows) {
    const startedMicros = BigInt(row.started_micros);
    of(row.site_id).open = {
      id: Number(row.id),
      startedAt: microsToTimestamp(startedMicros),
      startedMicros,
      endedAt: null,
      worst: row.worst_state,
      locationIds: row.location_ids === "" ? [] : row.location_ids.split(",").map(Number),
      firstErrorKind: row.first_error_kind,
      firstErrorMessage: row.first_error_message,
    };
  }
  return result;
}

/**
 * Writes the changes of `foldSite` for each site (`changes` by site id) and the location rows that changed, and
 * returns the id of each site's incident this batch opened and left open; a site's closed incidents that
 * overlap one it closed become one row (sql/0009). `stored` is what the fold started
 * from: every row is written only if it still holds that (a site's state and since, the open incident still
 * open, a location's check id and count), else the batch fails with SQLSTATE 40001 and is retried.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import type { BatchChanges } from "./writer_steps.ts";
 * declare const tx: postgres.TransactionSql;
 * declare const changes: BatchChanges;
 * declare const stored: Map<number, StoredSite>;
 * const opened = await writeSiteChanges(tx, changes.sites, changes.locations, stored);
 * ```
 */
export async function writeSiteChanges(
  tx: postgres.TransactionSql,
  changes: ReadonlyMap<number, SiteChanges>,
  locationRows: readonly LocationRow[],
  stored: ReadonlyMap<number, StoredSite>,
): Promise<Map<number, number>> {
  const siteIds = [...changes.keys()].sort((a, b) => a - b);
  const sites = siteIds.flatMap((siteId) => {
    const site = changes.get(siteId)!.site;
    return site === null ? [] : [{ siteId, ...site }];
  });
  const incidents = siteIds.flatMap((siteId) =>
    changes.get(siteId)!.incidents.map((incident) => ({ siteId, ...incident }))
  );
  const updated = incidents.filter((incident) => incident.id !== null);
  const opened = incidents.filter((incident) => incident.id === null);
  const ints = (values: readonly number[]) => `{${values.join(",")}}`;
  const replaced = sites.filter((s) => stored.get(s.siteId)?.site != null);
  const added = sites.filter((s) => stored.get(s.siteId)?.site == null);
  const before = (siteId: number) => stored.get(siteId)!.site!;
  // Sent together and run in this order (postgres.js sends in call order): an incident closed here is closed
  // before a new one of its site opens, so the insert is made last.
  const statements: (Promise<unknown> | null)[] = [
    ...writeLocations(tx, locationRows),
    replaced.length === 0 ? null : tx`
      update site_state s set state = t.state, since = t.since, changed_at = now()
      from unnest(
        ${numberArray(replaced.map((s) => s.siteId))}::int4[],
        ${textArray(replaced.map((s) => s.state))}::text[],
        ${textArray(replaced.map((s) => s.since))}::timestamptz[],
        ${textArray(replaced.map((s) => before(s.siteId).state))}::text[],
        ${textArray(replaced.map((s) => before(s.siteId).since))}::timestamptz[]
      ) as t(site_id, state, since, previous_state, previous_since)
      where s.site_id = t.site_id and s.state = t.previous_state and s.since = t.previous_since`.then(
      (result) => {
        if (result.count !== replaced.length) throw movedUnderneath("site state");
      },
    ),
    added.length === 0 ? null : tx`
      insert into site_state (site_id, state, since, changed_at)
      select t.site_id, t.state, t.since, now()
      from unnest(
        ${numberArray(added.map((s) => s.siteId))}::int4[],
        ${textArray(added.map((s) => s.state))}::text[],
        ${textArray(added.map((s) => s.since))}::timestamptz[]
      ) as t(site_id, state, since)
      order by t.site_id
      on conflict do nothing`.then((result) => {
      if (result.count !== added.length) throw movedUnderneath("site state");
    }),
    updated.length === 0 ? null : tx`
      update site_incidents i set ended_at = t.ended_at, worst_state = t.worst, location_ids = t.locations::int4[]
      from unnest(
        ${numberArray(updated.map((i) => i.id))}::int8[],
        ${textArray(updated.map((i) => i.endedAt))}::timestamptz[],
        ${textArray(updated.map((i) => i.worst))}::text[],
        ${textArray(updated.map((i) => ints(i.locationIds)))}::text[]
      ) as t(id, ended_at, worst, locations)
      where i.id = t.id and i.ended_at is null`.then((result) => {
      if (result.count !== updated.length) throw movedUnderneath("incident");
    }),
  ];
  const inserting = opened.length === 0 ? null : tx<{ id: string; site_id: number; open: boolean }[]>`
      insert into site_incidents (site_id, started_at, ended_at, worst_state, location_ids, first_error_kind,
                                  first_error_message)
      select t.site_id, t.started_at, t.ended_at, t.worst, t.locations::int4[], t.kind, t.message
      from unnest(
        ${numberArray(opened.map((i) => i.siteId))}::int4[],
        ${textArray(opened.map((i) => i.startedAt))}::timestamptz[],
        ${textArray(opened.map((i) => i.endedAt))}::timestamptz[],
        ${textArray(opened.map((i) => i.worst))}::text[],
        ${textArray(opened.map((i) => ints(i.locationIds)))}::text[],
        ${textArray(opened.map((i) => i.firstErrorKind))}::check_error_kind[],
        ${
    textArray(opened.map((i) => i.firstErrorMessage === null ? null : cleanText(i.firstErrorMessage)))
  }::text[]
      ) with ordinality as t(site_id, started_at, ended_at, worst, locations, kind, message, n)
      order by t.n
      -- A second open incident of a site breaks site_incidents_open_key: another writer opened one meanwhile.
      on conflict do nothing
      returning id, site_id, ended_at is null as open`.then((rows) => {
    if (rows.length !== opened.length) throw movedUnderneath("incident");
    return rows;
  });
  // Sent after the incidents are written: the closed incidents of a site that overlap become one (sql/0009).
  const closed = incidents.filter((incident) => incident.endedAt !== null);
  const merging = closed.length === 0 ? null : tx`
      select merge_overlapping_incidents(
        ${numberArray([...new Set(closed.map((i) => i.siteId))])}::int4[],
        (select min(t) from unnest(${textArray(closed.map((i) => i.startedAt))}::timestamptz[]) t),
        (select max(t) from unnest(${textArray(closed.map((i) => i.endedAt))}::timestamptz[]) t))`;
  await all([...statements, inserting, merging]);
  const openedIds = new Map<number, number>();
  for (const row of (await inserting) ?? []) if (row.open) openedIds.set(row.site_id, Number(row.id));
  return openedIds;
}
