/**
 * The hourly and daily rollups, maintained in the writer's transaction from the checks it inserts (so they are
 * exact: a check is counted once, when it is stored, and the offsets fence makes redelivery a no-op). Late checks
 * are counted in the period they started in, however late they arrive.
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
import { microsToTimestamp } from "./state_store.ts";

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

/**
 * Groups checks into the deltas of their (site, location, period) rows, sorted by site, period, location (the
 * order rows are locked in, so two writers cannot deadlock on them).
 *
 * @example
 * ```ts
 * rollupDeltas(checks, "hourly"); // [{ siteId: 1, locationId: 1, bucket: 1764547200000000n, checks: 2, ... }]
 * ```
 */
export function rollupDeltas(checks: readonly RollupCheck[], table: RollupTable): RollupDelta[] {
  const period = PERIOD_MICROS[table];
  const deltas = new Map<string, RollupDelta>();
  for (const check of checks) {
    const offset = check.micros % period;
    const bucket = check.micros - (offset < 0n ? offset + period : offset);
    const key = `${check.siteId}/${bucket}/${check.locationId}`;
    let delta = deltas.get(key);
    if (delta === undefined) {
      delta = {
        siteId: check.siteId,
        locationId: check.locationId,
        bucket,
        checks: 0,
        upChecks: 0,
        errors: new Map(),
        latency: new Map(),
      };
      deltas.set(key, delta);
    }
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
  return [...deltas.values()].sort((a, b) =>
    a.siteId - b.siteId || (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0) ||
    a.locationId - b.locationId
  );
}

/**
 * Adds the deltas to a rollup table: one statement for deltas of a single latency bucket, one for a single error
 * kind, one for the rest. Runs inside the writer's transaction.
 *
 * @example
 * ```ts
 * await upsertRollups(tx, "hourly", rollupDeltas(checks, "hourly"));
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
  const single = (list: readonly RollupDelta[], pick: (d: RollupDelta) => Map<number, number>) => {
    const entries = list.map((d) => [...pick(d)][0]!);
    return { index: numberArray(entries.map(([i]) => i)), count: numberArray(entries.map(([, n]) => n)) };
  };
  const statements: (Promise<unknown> | null)[] = [];
  if (oneBucket.length > 0) {
    const k = keys(oneBucket);
    const s = single(oneBucket, (d) => d.latency);
    statements.push(tx`
      insert into ${tx(name)} as r (bucket, site_id, location_id, checks, up_checks, latency)
      select t.bucket, t.site_id, t.location_id, t.checks, t.ups, array_fill(t.n, array[1], array[t.i])
      from unnest(${k.buckets}::timestamptz[], ${k.sites}::int4[], ${k.locations}::int4[], ${k.checks}::int4[],
                  ${k.ups}::int4[], ${s.index}::int4[], ${s.count}::int4[])
        as t(bucket, site_id, location_id, checks, ups, i, n)
      on conflict (site_id, bucket, location_id) do update set
        checks = r.checks + excluded.checks, up_checks = r.up_checks + excluded.up_checks,
        latency[array_lower(excluded.latency, 1)] = coalesce(r.latency[array_lower(excluded.latency, 1)], 0)
          + excluded.latency[array_lower(excluded.latency, 1)]`);
  }
  if (oneKind.length > 0) {
    const k = keys(oneKind);
    const s = single(oneKind, (d) => d.errors);
    statements.push(tx`
      insert into ${tx(name)} as r (bucket, site_id, location_id, checks, up_checks, error_counts)
      select t.bucket, t.site_id, t.location_id, t.checks, t.ups, array_fill(t.n, array[1], array[t.i])
      from unnest(${k.buckets}::timestamptz[], ${k.sites}::int4[], ${k.locations}::int4[], ${k.checks}::int4[],
                  ${k.ups}::int4[], ${s.index}::int4[], ${s.count}::int4[])
        as t(bucket, site_id, location_id, checks, ups, i, n)
      on conflict (site_id, bucket, location_id) do update set
        checks = r.checks + excluded.checks, up_checks = r.up_checks + excluded.up_checks,
        error_counts[array_lower(excluded.error_counts, 1)] =
          coalesce(r.error_counts[array_lower(excluded.error_counts, 1)], 0)
          + excluded.error_counts[array_lower(excluded.error_counts, 1)]`);
  }
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
