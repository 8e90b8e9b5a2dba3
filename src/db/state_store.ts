/**
 * The statements behind {@linkcode foldSite}: read and lock the `location_state`, `site_state` and open
 * `site_incidents` rows of a batch's sites, and write back what the fold changed. Runs in the writer's
 * transaction, so state and incidents move exactly once per stored check, like the rows.
 *
 * @module
 */
import type postgres from "postgres";
import type { ErrorKind } from "../message.ts";
import { boolArray, numberArray, textArray } from "./_arrays.ts";
import { all } from "./_pipeline.ts";
import { cleanText } from "./_values.ts";
import type { Incident, LocationState, SiteChanges, SiteRecord, SiteRows, SiteState } from "./state.ts";

/** RFC 3339 UTC text with microseconds for a time in microseconds since 1970. */
export function microsToTimestamp(micros: bigint): string {
  const millis = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const fraction = micros - millis * 1000n;
  return `${new Date(Number(millis)).toISOString().slice(0, 23)}${fraction.toString().padStart(3, "0")}Z`;
}

/**
 * Reads and locks (in site order, then location order) the stored rows of `siteIds`.
 *
 * @example
 * ```ts
 * const rows = await readSiteRows(tx, [1, 2]); // Map { 1 => { locations, site, open }, ... }
 * ```
 */
export async function readSiteRows(
  tx: postgres.TransactionSql,
  siteIds: readonly number[],
): Promise<Map<number, SiteRows>> {
  const ids = numberArray([...siteIds].sort((a, b) => a - b));
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
    }[]>`
      select site_id, location_id, agent_id, check_id::text, consecutive_failures, interval_ms, duration_ms,
             status, up, error_kind, error_message,
             (extract(epoch from checked_at) * 1000000)::int8 as micros,
             (extract(epoch from seen_at) * 1000)::int8 as seen_ms,
             (extract(epoch from since) * 1000000)::int8 as since_micros
      from location_state where site_id = any(${ids}::int4[])
      order by site_id, location_id
      for update`,
    tx<{ site_id: number; state: SiteState; since_micros: string }[]>`
      select site_id, state, (extract(epoch from since) * 1000000)::int8 as since_micros
      from site_state where site_id = any(${ids}::int4[])
      order by site_id
      for update`,
    tx<{
      id: string;
      site_id: number;
      started_micros: string;
      worst_state: "degraded" | "down";
      location_ids: number[];
      first_error_kind: ErrorKind | null;
      first_error_message: string | null;
    }[]>`
      select id, site_id, (extract(epoch from started_at) * 1000000)::int8 as started_micros, worst_state,
             location_ids, first_error_kind, first_error_message
      from site_incidents where site_id = any(${ids}::int4[]) and ended_at is null
      order by site_id
      for update`,
  ]);
  const result = new Map<
    number,
    { locations: Map<number, LocationState>; site: SiteRecord | null; open: Incident | null }
  >();
  for (const siteId of siteIds) result.set(siteId, { locations: new Map(), site: null, open: null });
  for (const row of locationRows) {
    const micros = BigInt(row.micros);
    const sinceMicros = BigInt(row.since_micros);
    result.get(row.site_id)!.locations.set(row.location_id, {
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
  }
  for (const row of siteRows) {
    const sinceMicros = BigInt(row.since_micros);
    result.get(row.site_id)!.site = { state: row.state, since: microsToTimestamp(sinceMicros), sinceMicros };
  }
  for (const row of incidentRows) {
    const startedMicros = BigInt(row.started_micros);
    result.get(row.site_id)!.open = {
      id: Number(row.id),
      startedAt: microsToTimestamp(startedMicros),
      startedMicros,
      endedAt: null,
      worst: row.worst_state,
      locationIds: row.location_ids,
      firstErrorKind: row.first_error_kind,
      firstErrorMessage: row.first_error_message,
    };
  }
  return result;
}

/**
 * Writes the changes of {@linkcode foldSite} for each site (`changes` by site id). `now` is the batch's clock,
 * stored as `seen_at` of the locations that moved.
 *
 * @example
 * ```ts
 * await writeSiteChanges(tx, new Map([[siteId, foldSite(rows, checks, now.getTime())]]), now);
 * ```
 */
export async function writeSiteChanges(
  tx: postgres.TransactionSql,
  changes: ReadonlyMap<number, SiteChanges>,
  now: Date,
): Promise<void> {
  const siteIds = [...changes.keys()].sort((a, b) => a - b);
  const locations = siteIds.flatMap((siteId) =>
    changes.get(siteId)!.locations.map((location) => ({ siteId, ...location }))
  );
  const sites = siteIds.flatMap((siteId) => {
    const site = changes.get(siteId)!.site;
    return site === null ? [] : [{ siteId, ...site }];
  });
  const incidents = siteIds.flatMap((siteId) =>
    changes.get(siteId)!.incidents.map((incident) => ({ siteId, ...incident }))
  );
  const updated = incidents.filter((incident) => incident.id !== null);
  const opened = incidents.filter((incident) => incident.id === null);
  const seenAt = now.toISOString();
  const ints = (values: readonly number[]) => `{${values.join(",")}}`;
  // Sent together and run in this order: an incident closed here is closed before a new one of its site opens.
  await all([
    locations.length === 0 ? null : tx`
      insert into location_state as l (site_id, location_id, check_id, checked_at, seen_at, since, agent_id,
                                       consecutive_failures, interval_ms, duration_ms, status, up, error_kind,
                                       error_message)
      select t.site_id, t.location_id, t.check_id, t.checked_at, ${seenAt}::timestamptz, t.since, t.agent_id,
             t.failures, t.interval_ms, t.duration_ms, t.status, t.up, t.error_kind, t.error_message
      from unnest(
        ${numberArray(locations.map((l) => l.siteId))}::int4[],
        ${numberArray(locations.map((l) => l.locationId))}::int4[],
        ${textArray(locations.map((l) => l.checkId))}::uuid[],
        ${textArray(locations.map((l) => l.checkedAt))}::timestamptz[],
        ${textArray(locations.map((l) => l.since))}::timestamptz[],
        ${numberArray(locations.map((l) => l.agentId))}::int4[],
        ${numberArray(locations.map((l) => l.consecutiveFailures))}::int4[],
        ${numberArray(locations.map((l) => l.intervalMs))}::int4[],
        ${numberArray(locations.map((l) => l.durationMs))}::real[],
        ${numberArray(locations.map((l) => l.status))}::int2[],
        ${boolArray(locations.map((l) => l.up))}::bool[],
        ${textArray(locations.map((l) => l.errorKind))}::check_error_kind[],
        ${textArray(locations.map((l) => l.errorMessage === null ? null : cleanText(l.errorMessage)))}::text[]
      ) as t(site_id, location_id, check_id, checked_at, since, agent_id, failures, interval_ms, duration_ms,
             status, up, error_kind, error_message)
      on conflict (site_id, location_id) do update set
        check_id = excluded.check_id, checked_at = excluded.checked_at, seen_at = excluded.seen_at,
        since = excluded.since, agent_id = excluded.agent_id, consecutive_failures = excluded.consecutive_failures,
        interval_ms = excluded.interval_ms, duration_ms = excluded.duration_ms, status = excluded.status,
        up = excluded.up, error_kind = excluded.error_kind, error_message = excluded.error_message
      where (excluded.checked_at, excluded.check_id) > (l.checked_at, l.check_id)`,
    sites.length === 0 ? null : tx`
      insert into site_state as s (site_id, state, since, changed_at)
      select t.site_id, t.state, t.since, now()
      from unnest(
        ${numberArray(sites.map((s) => s.siteId))}::int4[],
        ${textArray(sites.map((s) => s.state))}::text[],
        ${textArray(sites.map((s) => s.since))}::timestamptz[]
      ) as t(site_id, state, since)
      on conflict (site_id) do update set state = excluded.state, since = excluded.since, changed_at = now()`,
    updated.length === 0 ? null : tx`
      update site_incidents i set ended_at = t.ended_at, worst_state = t.worst, location_ids = t.locations::int4[]
      from unnest(
        ${numberArray(updated.map((i) => i.id))}::int8[],
        ${textArray(updated.map((i) => i.endedAt))}::timestamptz[],
        ${textArray(updated.map((i) => i.worst))}::text[],
        ${textArray(updated.map((i) => ints(i.locationIds)))}::text[]
      ) as t(id, ended_at, worst, locations)
      where i.id = t.id`,
    opened.length === 0 ? null : tx`
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
      order by t.n`,
  ]);
}
