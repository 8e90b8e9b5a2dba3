/**
 * The hourly and daily rollups, maintained in the writer's transaction from the checks it inserts (so they are
 * exact: a check is counted once, when it is stored, and the offsets fence makes redelivery a no-op). Late checks
 * are counted in the period they started in, however late they arrive.
 *
 * A location's current hour is counted in its `location_state` row (the accumulator), which the writer updates
 * for every check anyway; the counts move into `rollup_hourly` and `rollup_daily` once per hour, when the
 * location's first check of a later hour arrives. Updating the rollup rows for every check instead would cost
 * two more row updates per check (measured: about half the writer's throughput).
 *
 * A rollup row's `error_counts` and `latency` are int4[] with meaningful subscripts (error kind 1..8 in enum
 * order; latency bucket 0..159), trimmed to the subscripts used; an element that is NULL or outside the bounds
 * counts 0. The common delta — one latency bucket, or one error kind — is added in place with a subscripted
 * assignment (`latency[47] = latency[47] + 1`), which costs nothing beyond the row update; other deltas go
 * through `counts_add()`, a PL/pgSQL function (about 10 µs a row).
 *
 * @module
 */
import type postgres from "postgres";
import { ERROR_KINDS, type ErrorKind } from "../message.ts";
import { numberArray, textArray } from "./_arrays.ts";
import { all } from "./_pipeline.ts";
import { histogramLiteral, latencyBucket } from "./latency.ts";
import { microsToTimestamp } from "./_values.ts";

/** A stored check, as far as the rollups are concerned. */
export interface RollupCheck {
  readonly siteId: number;
  readonly locationId: number;
  /** started_at in microseconds since 1970. */
  readonly micros: bigint;
  readonly up: boolean;
  readonly durationMs: number;
  readonly errorKind: ErrorKind | null;
}

/** The change one batch makes to one rollup row. */
export interface RollupDelta {
  readonly siteId: number;
  readonly locationId: number;
  /** Start of the period, microseconds since 1970. */
  readonly bucket: bigint;
  checks: number;
  upChecks: number;
  /** Count per error kind number (1-based, enum order). */
  readonly errors: Map<number, number>;
  /** Count per latency bucket. */
  readonly latency: Map<number, number>;
}

/** Length of an hourly and a daily period in microseconds. */
export const PERIOD_MICROS = { hourly: 3_600_000_000n, daily: 86_400_000_000n } as const;
/** A rollup table. */
export type RollupTable = keyof typeof PERIOD_MICROS;

const KIND_NUMBER = new Map(ERROR_KINDS.map((kind, i) => [kind, i + 1]));

/** The counts of one location's current hour, kept in its `location_state` row (`acc_*` columns). */
export interface Accumulator {
  /** Start of the hour, microseconds since 1970; null before the location's first check. */
  readonly hour: bigint | null;
  readonly checks: number;
  readonly upChecks: number;
  readonly errors: ReadonlyMap<number, number>;
  readonly latency: ReadonlyMap<number, number>;
}

/** An accumulator without counts. */
export const EMPTY_ACCUMULATOR: Accumulator = Object.freeze({
  hour: null,
  checks: 0,
  upChecks: 0,
  errors: new Map(),
  latency: new Map(),
});

/** Start of the period of a time in microseconds (UTC hours and days start on multiples of their length). */
export function periodStart(micros: bigint, table: RollupTable): bigint {
  const period = PERIOD_MICROS[table];
  const offset = micros % period;
  return micros - (offset < 0n ? offset + period : offset);
}

function emptyDelta(siteId: number, locationId: number, bucket: bigint): RollupDelta {
  return { siteId, locationId, bucket, checks: 0, upChecks: 0, errors: new Map(), latency: new Map() };
}

function count(delta: RollupDelta, check: RollupCheck): void {
  delta.checks++;
  if (check.up) {
    delta.upChecks++;
    const index = latencyBucket(check.durationMs);
    delta.latency.set(index, (delta.latency.get(index) ?? 0) + 1);
  } else if (check.errorKind !== null) {
    const kind = KIND_NUMBER.get(check.errorKind)!;
    delta.errors.set(kind, (delta.errors.get(kind) ?? 0) + 1);
  }
}

/**
 * Counts one location's new checks (sorted by time) into its accumulator: a check of the accumulator's hour
 * is added to it; the first check of a later hour moves the accumulator's counts out as an hourly delta and
 * starts that hour; a check of an earlier hour (late), or one starting after `horizonMicros` (a clock far
 * ahead, which must not hold the accumulator in the future), becomes an hourly delta of its own. With
 * `keep` false (the location has no state row to keep counts in) every check becomes a delta. The maps of
 * `stored` may be changed.
 *
 * @example
 * ```ts
 * declare const stored: Accumulator;
 * declare const checksOfOneLocation: RollupCheck[];
 * const horizon = BigInt(Date.now() + 600_000) * 1000n;
 * const { accumulator, deltas } = accumulate(stored, checksOfOneLocation, horizon, true);
 * ```
 */
export function accumulate(
  stored: Accumulator,
  checks: readonly RollupCheck[],
  horizonMicros: bigint,
  keep: boolean,
): { accumulator: Accumulator; deltas: RollupDelta[] } {
  const deltas: RollupDelta[] = [];
  let current: RollupDelta | null = stored.hour === null ? null : {
    siteId: 0,
    locationId: 0,
    bucket: stored.hour,
    checks: stored.checks,
    upChecks: stored.upChecks,
    // Taken over rather than copied (most batches add one check to them): the caller's accumulator is read from
    // the database for this fold only.
    errors: stored.errors as Map<number, number>,
    latency: stored.latency as Map<number, number>,
  };
  for (const check of checks) {
    const hour = periodStart(check.micros, "hourly");
    if (!keep || check.micros > horizonMicros || (current !== null && hour < current.bucket)) {
      const delta = emptyDelta(check.siteId, check.locationId, hour);
      count(delta, check);
      deltas.push(delta);
      continue;
    }
    if (current === null || hour > current.bucket) {
      if (current !== null && current.checks > 0) {
        deltas.push({ ...current, siteId: check.siteId, locationId: check.locationId });
      }
      current = emptyDelta(check.siteId, check.locationId, hour);
    }
    count(current, check);
  }
  const accumulator = current === null ? stored : {
    hour: current.bucket,
    checks: current.checks,
    upChecks: current.upChecks,
    errors: current.errors,
    latency: current.latency,
  };
  return { accumulator, deltas };
}

/**
 * Merges hourly deltas into the deltas of a table's periods (same hours for "hourly", their days for "daily"),
 * sorted by site, period, location (the order rows are locked in, so two writers cannot deadlock on them).
 *
 * @example
 * ```ts
 * declare const hourlyDeltas: RollupDelta[];
 * const daily = toPeriod(hourlyDeltas, "daily");
 * ```
 */
export function toPeriod(deltas: readonly RollupDelta[], table: RollupTable): RollupDelta[] {
  const merged = new Map<string, RollupDelta>();
  for (const delta of deltas) {
    const bucket = periodStart(delta.bucket, table);
    const key = `${delta.siteId}/${bucket}/${delta.locationId}`;
    let into = merged.get(key);
    if (into === undefined) {
      into = emptyDelta(delta.siteId, delta.locationId, bucket);
      merged.set(key, into);
    }
    into.checks += delta.checks;
    into.upChecks += delta.upChecks;
    for (const [k, n] of delta.errors) into.errors.set(k, (into.errors.get(k) ?? 0) + n);
    for (const [k, n] of delta.latency) into.latency.set(k, (into.latency.get(k) ?? 0) + n);
  }
  return [...merged.values()].sort((a, b) =>
    a.siteId - b.siteId || (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0) ||
    a.locationId - b.locationId
  );
}

/**
 * Reads PostgreSQL's text of a count array (`{3,1}` with subscripts from 1, or `[47:49]={3,NULL,1}`) into a map
 * of subscript to count, leaving out zeros and NULLs. Null gives an empty map.
 *
 * @example
 * ```ts
 * parseCounts("[47:49]={3,NULL,1}"); // Map { 47 => 3, 49 => 1 }
 * ```
 */
export function parseCounts(text: string | null): Map<number, number> {
  const counts = new Map<number, number>();
  if (text === null) return counts;
  const match = /^(?:\[(-?\d+):-?\d+\]=)?\{(.*)\}$/.exec(text);
  if (match === null) throw new SyntaxError(`Cannot read counts: '${text}' is not an integer array`);
  if (match[2] === "") return counts;
  let subscript = match[1] === undefined ? 1 : Number(match[1]);
  for (const item of match[2]!.split(",")) {
    if (item !== "NULL" && item !== "0") counts.set(subscript, Number(item));
    subscript++;
  }
  return counts;
}

/**
 * Adds the deltas to a rollup table: one statement for deltas of a single latency bucket, one for a single error
 * kind, one for the rest. Runs inside the writer's transaction.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const tx: postgres.TransactionSql;
 * declare const deltas: RollupDelta[];
 * await upsertRollups(tx, "hourly", toPeriod(deltas, "hourly"));
 * ```
 */
export async function upsertRollups(
  tx: postgres.TransactionSql,
  table: RollupTable,
  deltas: readonly RollupDelta[],
): Promise<void> {
  const oneBucket = deltas.filter((d) => d.latency.size === 1 && d.errors.size === 0);
  const oneKind = deltas.filter((d) => d.latency.size === 0 && d.errors.size === 1);
  const other = deltas.filter((d) => !oneBucket.includes(d) && !oneKind.includes(d));
  const name = table === "hourly" ? "rollup_hourly" : "rollup_daily";
  const keys = (list: readonly RollupDelta[]) => ({
    buckets: textArray(list.map((d) => microsToTimestamp(d.bucket))),
    sites: numberArray(list.map((d) => d.siteId)),
    locations: numberArray(list.map((d) => d.locationId)),
    checks: numberArray(list.map((d) => d.checks)),
    ups: numberArray(list.map((d) => d.upChecks)),
  });
  // Deltas of one latency bucket (or one error kind) add to that one subscript in place instead of merging
  // whole arrays with counts_add; the column is the only difference between the two statements.
  const single = (
    list: readonly RollupDelta[],
    column: "latency" | "error_counts",
    pick: (d: RollupDelta) => Map<number, number>,
  ) => {
    const k = keys(list);
    const entries = list.map((d) => [...pick(d)][0]!);
    const index = numberArray(entries.map(([i]) => i));
    const count = numberArray(entries.map(([, n]) => n));
    const col = tx(column);
    return tx`
      insert into ${tx(name)} as r (bucket, site_id, location_id, checks, up_checks, ${col})
      select t.bucket, t.site_id, t.location_id, t.checks, t.ups, array_fill(t.n, array[1], array[t.i])
      from unnest(${k.buckets}::timestamptz[], ${k.sites}::int4[], ${k.locations}::int4[], ${k.checks}::int4[],
                  ${k.ups}::int4[], ${index}::int4[], ${count}::int4[])
        as t(bucket, site_id, location_id, checks, ups, i, n)
      on conflict (site_id, bucket, location_id) do update set
        checks = r.checks + excluded.checks, up_checks = r.up_checks + excluded.up_checks,
        ${col}[array_lower(excluded.${col}, 1)] = coalesce(r.${col}[array_lower(excluded.${col}, 1)], 0)
          + excluded.${col}[array_lower(excluded.${col}, 1)]`;
  };
  const statements: (Promise<unknown> | null)[] = [];
  if (oneBucket.length > 0) statements.push(single(oneBucket, "latency", (d) => d.latency));
  if (oneKind.length > 0) statements.push(single(oneKind, "error_counts", (d) => d.errors));
  if (other.length > 0) {
    const k = keys(other);
    statements.push(tx`
      insert into ${tx(name)} as r (bucket, site_id, location_id, checks, up_checks, error_counts, latency)
      select t.bucket, t.site_id, t.location_id, t.checks, t.ups, t.errors::int4[], t.latency::int4[]
      from unnest(${k.buckets}::timestamptz[], ${k.sites}::int4[], ${k.locations}::int4[], ${k.checks}::int4[],
                  ${k.ups}::int4[], ${textArray(other.map((d) => histogramLiteral(d.errors)))}::text[],
                  ${textArray(other.map((d) => histogramLiteral(d.latency)))}::text[])
        as t(bucket, site_id, location_id, checks, ups, errors, latency)
      on conflict (site_id, bucket, location_id) do update set
        checks = r.checks + excluded.checks, up_checks = r.up_checks + excluded.up_checks,
        error_counts = counts_add(r.error_counts, excluded.error_counts),
        latency = counts_add(r.latency, excluded.latency)`);
  }
  await all(statements);
}
