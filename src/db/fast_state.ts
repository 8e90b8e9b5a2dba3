/**
 * The writer's fast path for state and current-hour counts: the common batch (every check newer than its
 * location's latest, no location turning up or down, no new hour, the site's state and open incident unchanged)
 * changes nothing but each location's latest check and its current-hour counts. Those sites are written with
 * one UPDATE per shape of counts, which checks those conditions against the stored rows itself and returns the
 * sites it wrote, without reading any state to the client; every other site goes through the read and fold of
 * {@linkcode foldSite} (src/db/state.ts), whose rules this path must give the same rows as. Private to src/db.
 *
 * @module
 */
import type postgres from "postgres";
import { boolArray, numberArray, textArray } from "./_arrays.ts";
import { all } from "./_pipeline.ts";
import { cleanText } from "./_values.ts";
import { histogramLiteral, latencyBucket } from "./latency.ts";
import { ERROR_KINDS } from "../message.ts";
import { periodStart } from "./rollups.ts";
import type { LocatedCheck } from "./writer_steps.ts";

const KIND_NUMBER = new Map(ERROR_KINDS.map((kind, i) => [kind, i + 1]));

/** One location's checks of a batch, summed: its first and last (in time order) and its counts. */
interface Group {
  readonly first: LocatedCheck;
  last: LocatedCheck;
  n: number;
  nUp: number;
  readonly latency: Map<number, number>;
  readonly errors: Map<number, number>;
}

/** Sites the fast path may write, by shape of their count deltas; each statement gets whole sites. */
export interface FastPlan {
  /** Every location has at most one latency bucket and no error kind to add. */
  readonly oneBucket: Group[];
  /** Every location has no latency bucket and at most one error kind to add. */
  readonly oneKind: Group[];
  readonly other: Group[];
}

function before(a: LocatedCheck, b: LocatedCheck): boolean {
  return a.micros < b.micros || (a.micros === b.micros && a.id < b.id);
}

/**
 * Picks the sites whose checks may take the fast path, as far as the checks alone tell: none after `horizon`
 * (microseconds), all in one hour, and each location's checks all up or all down. The stored rows decide the
 * rest (in {@linkcode writeFast}).
 */
export function planFast(checks: readonly LocatedCheck[], horizon: bigint): FastPlan {
  const bySite = new Map<number, { hour: bigint; ok: boolean; groups: Map<number, Group> }>();
  for (const r of checks) {
    const hour = periodStart(r.micros, "hourly");
    let site = bySite.get(r.siteId);
    if (site === undefined) {
      site = { hour, ok: true, groups: new Map() };
      bySite.set(r.siteId, site);
    }
    if (!site.ok) continue;
    if (r.micros > horizon || hour !== site.hour) {
      site.ok = false;
      continue;
    }
    let group = site.groups.get(r.locationId);
    if (group === undefined) {
      group = { first: r, last: r, n: 0, nUp: 0, latency: new Map(), errors: new Map() };
      site.groups.set(r.locationId, group);
    } else if (group.first.check.up !== r.check.up) {
      site.ok = false;
      continue;
    }
    if (before(r, group.first)) (group as { first: LocatedCheck }).first = r;
    if (before(group.last, r)) group.last = r;
    group.n++;
    if (r.check.up) {
      group.nUp++;
      const b = latencyBucket(r.check.duration_ms);
      group.latency.set(b, (group.latency.get(b) ?? 0) + 1);
    } else if (r.check.error !== null) {
      const k = KIND_NUMBER.get(r.check.error.kind)!;
      group.errors.set(k, (group.errors.get(k) ?? 0) + 1);
    }
  }
  const plan: FastPlan = { oneBucket: [], oneKind: [], other: [] };
  for (const site of bySite.values()) {
    if (!site.ok) continue;
    const groups = [...site.groups.values()];
    // A down check without an error kind adds to neither array: such a site goes to `other` (counts_add()
    // leaves an array as it is for a null delta), as a subscripted add of 0 would widen the stored array.
    if (groups.every((g) => g.latency.size === 1 && g.errors.size === 0)) plan.oneBucket.push(...groups);
    else if (groups.every((g) => g.latency.size === 0 && g.errors.size === 1)) plan.oneKind.push(...groups);
    else plan.other.push(...groups);
  }
  return plan;
}

/**
 * Writes the planned sites whose stored rows allow it (see the module comment) and returns their ids; the
 * caller folds the other sites' checks the careful way.
 */
export async function writeFast(
  tx: postgres.TransactionSql,
  plan: FastPlan,
  now: Date,
): Promise<Set<number>> {
  const nowText = now.toISOString();
  const statement = (groups: readonly Group[], shape: "oneBucket" | "oneKind" | "other") => {
    if (groups.length === 0) return null;
    const pick = <T>(f: (g: Group) => T) => groups.map(f);
    const single = (map: Map<number, number>) => map.size === 0 ? [null, null] : [...map][0]!;
    // The counts: a single subscript is added in place (no function call), others through counts_add().
    const counts = shape === "oneBucket"
      ? tx`acc_latency[t.i] = coalesce(l.acc_latency[t.i], 0) + t.k`
      : shape === "oneKind"
      ? tx`acc_error_counts[t.i] = coalesce(l.acc_error_counts[t.i], 0) + t.k`
      : tx`acc_latency = counts_add(l.acc_latency, t.latency::int4[]),
           acc_error_counts = counts_add(l.acc_error_counts, t.errors::int4[])`;
    const one = shape === "oneBucket" ? pick((g) => single(g.latency)) : pick((g) => single(g.errors));
    return tx<{ site_id: number }[]>`
      with t as (
        select * from unnest(
          ${numberArray(pick((g) => g.first.siteId))}::int4[],
          ${numberArray(pick((g) => g.first.locationId))}::int4[],
          ${textArray(pick((g) => g.first.check.started_at))}::timestamptz[],
          ${textArray(pick((g) => g.first.id))}::uuid[],
          ${textArray(pick((g) => g.last.id))}::uuid[],
          ${textArray(pick((g) => g.last.check.started_at))}::timestamptz[],
          ${numberArray(pick((g) => g.last.agentId))}::int4[],
          ${numberArray(pick((g) => g.last.check.interval_ms))}::int4[],
          ${numberArray(pick((g) => g.last.check.duration_ms))}::real[],
          ${numberArray(pick((g) => g.last.check.status))}::int2[],
          ${boolArray(pick((g) => g.last.check.up))}::bool[],
          ${textArray(pick((g) => g.last.check.error?.kind ?? null))}::check_error_kind[],
          ${
      textArray(pick((g) => g.last.check.error ? cleanText(g.last.check.error.message) : null))
    }::text[],
          ${numberArray(pick((g) => g.n))}::int4[],
          ${numberArray(pick((g) => g.nUp))}::int4[],
          ${numberArray(one.map(([i]) => i ?? null))}::int4[],
          ${numberArray(one.map(([, k]) => k ?? null))}::int4[],
          ${textArray(shape === "other" ? pick((g) => histogramLiteral(g.latency)) : [])}::text[],
          ${textArray(shape === "other" ? pick((g) => histogramLiteral(g.errors)) : [])}::text[]
        ) as t(site_id, location_id, first_at, first_id, check_id, checked_at, agent_id, interval_ms, duration_ms,
               status, up, error_kind, error_message, n, n_up, i, k, latency, errors)
      ),
      -- Whether each location's checks all come after its stored latest, in its current hour, without turning,
      -- and the location was fresh already (so no site's set of fresh locations changes within the batch).
      fit as (
        select t.*, coalesce(
                 (l.checked_at, l.check_id) < (t.first_at, t.first_id) and l.up = t.up
                 and l.acc_hour = date_bin('1 hour', t.first_at, timestamptz '2000-01-03 00:00:00+00')
                 and l.seen_at + 3 * l.interval_ms * interval '1 millisecond' >= ${nowText}::timestamptz,
                 false) as fits
        from t left join location_state l on l.site_id = t.site_id and l.location_id = t.location_id
      ),
      -- Each site's state derived from its fresh locations before this statement (all of them stay fresh and keep
      -- their up when the site fits), in one pass over the batch's sites' rows rather than a probe per row. The
      -- ids come as an array (an index condition), not from t, which the planner guesses at 10 rows and so
      -- joins by scanning every location's row.
      derived as (
        select x.site_id,
               case when count(*) filter (where not x.up) = 0 then 'up'
                    when count(*) filter (where not x.up) = count(*) then 'down' else 'degraded' end as derived
        from location_state x
        where x.site_id = any(${numberArray([...new Set(pick((g) => g.first.siteId))])}::int4[])
          and x.seen_at + 3 * x.interval_ms * interval '1 millisecond' >= ${nowText}::timestamptz
        group by x.site_id
      ),
      -- The same per site, on every row of the site (no join on a CTE, whose row count the planner cannot know).
      site as (
        select f.*, bool_and(f.fits) over w as site_fits,
               array_agg(f.location_id) filter (where not f.up) over w as down, d.derived
        from fit f left join derived d on d.site_id = f.site_id
        window w as (partition by f.site_id)
      )
      update location_state l set
        check_id = t.check_id, checked_at = t.checked_at, seen_at = ${nowText}::timestamptz, agent_id = t.agent_id,
        consecutive_failures = case when t.up then 0 else l.consecutive_failures + t.n end,
        interval_ms = t.interval_ms, duration_ms = t.duration_ms, status = t.status, error_kind = t.error_kind,
        error_message = t.error_message, acc_checks = l.acc_checks + t.n, acc_up_checks = l.acc_up_checks + t.n_up,
        ${counts}
      from site t
      join site_state st on st.site_id = t.site_id
      left join site_incidents i on i.site_id = t.site_id and i.ended_at is null
      -- Sites all of whose batch locations fit, whose derived state is the stored one, and whose open incident
      -- (there is one exactly when the state is not up) would not change.
      where t.site_fits and t.derived = st.state
        and case when t.derived = 'up' then i.id is null
                 else i.id is not null and (i.worst_state = 'down' or t.derived = 'degraded')
                   and (t.down is null or i.location_ids @> t.down) end
        and l.site_id = t.site_id and l.location_id = t.location_id
      returning l.site_id`;
  };
  const results = await all([
    statement(plan.oneBucket, "oneBucket"),
    statement(plan.oneKind, "oneKind"),
    statement(plan.other, "other"),
  ]);
  const written = new Set<number>();
  for (const rows of results) for (const row of rows ?? []) written.add(row.site_id);
  return written;
}
