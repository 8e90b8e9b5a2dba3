/**
 * Partitions of the rollup tables: `rollup_hourly` by UTC month (`rollup_hourly_pYYYYMM`), `rollup_daily` and
 * `site_daily` by UTC year (`rollup_daily_pYYYY`, `site_daily_pYYYY`, dropped together); made ahead of time
 * and dropped whole past their retention, never row by row. The sink runs {@linkcode maintainRollupPartitions}
 * beside `maintainPartitions` (the raw checks).
 *
 * @module
 */
import type postgres from "postgres";
import {
  changePartitions,
  checkDays,
  checkLockTimeout,
  checkNow,
  DAY_MS,
  type MaintenanceOptions,
  type MaintenanceReport,
} from "./_partition_ranges.ts";
import { transaction } from "./_transaction.ts";
import { MONITOR_LOCK_SPACE } from "./migrate.ts";

/** Second half of the advisory lock key held while maintaining rollup partitions. */
export const ROLLUP_PARTITIONS_LOCK = 3;

/** Options of {@linkcode maintainRollupPartitions}. */
export interface RollupPartitionOptions extends MaintenanceOptions {
  /** Days of hourly rollups to keep; 0 keeps everything. Default 400. */
  readonly hourlyRetentionDays?: number;
  /** Days of daily rollups (and of site_daily) to keep; 0 (the default) keeps everything. */
  readonly dailyRetentionDays?: number;
}

/** What {@linkcode maintainRollupPartitions} did: partitions listed hourly, daily, then site_daily. */
export type RollupPartitionReport = MaintenanceReport;

/** A rollup partition: table, name and bounds, built only from a UTC date (never from outside text). */
export interface RollupPartition {
  readonly table: RollupTable;
  readonly name: string;
  /** Inclusive lower bound, RFC 3339. */
  readonly from: string;
  /** Exclusive upper bound, RFC 3339. */
  readonly to: string;
}

/** The partitioned rollup tables: site_daily (sql/0005) follows rollup_daily's yearly partitions. */
export type RollupTable = "rollup_hourly" | "rollup_daily" | "site_daily";
/** The tables in the order they are reported and expired (rollup_daily's trigger writes site_daily). */
const TABLES: readonly RollupTable[] = ["rollup_hourly", "rollup_daily", "site_daily"];

const NAME = /^(rollup_hourly_p\d{6}|rollup_daily_p\d{4}|site_daily_p\d{4})$/;
const BOUND = /^\d{4}-\d{2}-01T00:00:00Z$/;

/**
 * The partition of `table` that holds `time`: its UTC month for hourly rollups, its UTC year for daily ones
 * (rollup_daily and site_daily).
 *
 * @example
 * ```ts
 * rollupPartition("rollup_hourly", new Date("2026-11-23T10:00:00Z"));
 * // { table: "rollup_hourly", name: "rollup_hourly_p202611", from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z" }
 * ```
 */
export function rollupPartition(table: RollupTable, time: Date): RollupPartition {
  const year = time.getUTCFullYear();
  const month = time.getUTCMonth();
  if (!Number.isFinite(year) || year < 1 || year > 9998) {
    throw new RangeError(`Cannot name a partition: the date is out of range: ${String(time)}`);
  }
  const iso = (y: number, m: number) => new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10) + "T00:00:00Z";
  const partition: RollupPartition = table === "rollup_hourly"
    ? {
      table,
      name: `rollup_hourly_p${year.toString().padStart(4, "0")}${(month + 1).toString().padStart(2, "0")}`,
      from: iso(year, month),
      to: iso(year, month + 1),
    }
    : {
      table,
      name: `${table}_p${year.toString().padStart(4, "0")}`,
      from: iso(year, 0),
      to: iso(year + 1, 0),
    };
  // The name and bounds reach SQL text: they must hold nothing but what these patterns allow.
  if (!NAME.test(partition.name) || !BOUND.test(partition.from) || !BOUND.test(partition.to)) {
    throw new RangeError(`Cannot name a partition: unexpected name or bounds for ${time.toISOString()}`);
  }
  return partition;
}

function parsePartition(name: string): RollupPartition | null {
  const hourly = /^rollup_hourly_p(\d{4})(\d{2})$/.exec(name);
  if (hourly) {
    const time = new Date(Date.UTC(Number(hourly[1]), Number(hourly[2]) - 1, 1));
    return rollupPartition("rollup_hourly", time).name === name
      ? rollupPartition("rollup_hourly", time)
      : null;
  }
  const daily = /^(rollup_daily|site_daily)_p(\d{4})$/.exec(name);
  if (daily) return rollupPartition(daily[1] as RollupTable, new Date(Date.UTC(Number(daily[2]), 0, 1)));
  return null;
}

/**
 * In one transaction, under an advisory lock (a second caller at the same time returns `locked: false` at once):
 * creates the partitions of this month and the next (hourly) and of this year and the next (daily) that are
 * missing, moving into each the rows of its range that were stored in the default partition; and drops the
 * partitions whose whole range is older than their retention. Throws `RangeError` for invalid options before
 * any work; database errors propagate, with nothing changed.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import { silentLogger as log } from "../log.ts";
 * declare const sql: postgres.Sql;
 * await maintainRollupPartitions(sql, { hourlyRetentionDays: 400, dailyRetentionDays: 0, log });
 * ```
 */
export async function maintainRollupPartitions(
  sql: postgres.Sql,
  options: RollupPartitionOptions,
): Promise<RollupPartitionReport> {
  const hourlyDays = checkDays("hourlyRetentionDays", options.hourlyRetentionDays ?? 400);
  const dailyDays = checkDays("dailyRetentionDays", options.dailyRetentionDays ?? 0);
  const now = checkNow(options.now);
  const lockTimeoutMs = checkLockTimeout(options);
  const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  const nextYear = new Date(Date.UTC(now.getUTCFullYear() + 1, 0, 1));
  const wanted = [
    rollupPartition("rollup_hourly", now),
    rollupPartition("rollup_hourly", nextMonth),
    rollupPartition("rollup_daily", now),
    rollupPartition("rollup_daily", nextYear),
    rollupPartition("site_daily", now),
    rollupPartition("site_daily", nextYear),
  ];
  const cutoffs = {
    rollup_hourly: hourlyDays === 0 ? null : now.getTime() - hourlyDays * DAY_MS,
    rollup_daily: dailyDays === 0 ? null : now.getTime() - dailyDays * DAY_MS,
    site_daily: dailyDays === 0 ? null : now.getTime() - dailyDays * DAY_MS,
  };
  return await transaction(sql, async (tx) => {
    const [lock] = await tx<{ locked: boolean }[]>`
      select pg_try_advisory_xact_lock(${MONITOR_LOCK_SPACE}, ${ROLLUP_PARTITIONS_LOCK}) as locked`;
    if (!lock?.locked) return { locked: false, created: [], dropped: [], movedRows: 0 };
    const existing = new Set(
      (await tx<{ name: string }[]>`
        select c.relname as name
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent in ('rollup_hourly'::regclass, 'rollup_daily'::regclass, 'site_daily'::regclass)`)
        .map((row) => row.name),
    );
    const missing = wanted.filter((p) => !existing.has(p.name));
    const expired = [...existing].flatMap((name) => {
      const partition = parsePartition(name);
      if (partition === null) return [];
      const cutoff = cutoffs[partition.table];
      return cutoff !== null && Date.parse(partition.to) <= cutoff ? [partition] : [];
    }).sort((a, b) => TABLES.indexOf(a.table) - TABLES.indexOf(b.table) || a.name.localeCompare(b.name));
    const movedRows = await changePartitions(tx, {
      missing,
      expired,
      lockTimeoutMs,
      lock: () => tx`lock table rollup_hourly, rollup_daily, site_daily in access exclusive mode`,
      create: (partition) => createPartition(tx, partition),
      log: options.log,
    });
    // rollup_daily before site_daily: its trigger takes what it deletes off site_daily's rows, which must be there.
    for (const table of TABLES) {
      const cutoff = cutoffs[table];
      if (cutoff === null) continue;
      // Rows that fell into the default partition (no partition for their time) expire row by row, as few.
      await tx`delete from ${tx(`${table}_default`)} where bucket < ${new Date(cutoff)}`;
    }
    return {
      locked: true,
      created: missing.map((p) => p.name),
      dropped: expired.map((p) => p.name),
      movedRows,
    };
  });
}

/** Creates one partition, first moving its rows out of the default partition (CREATE fails otherwise). */
async function createPartition(tx: postgres.TransactionSql, partition: RollupPartition): Promise<number> {
  const defaultTable = `${partition.table}_default`;
  const moved = await tx`
    create temp table rollups_moving on commit drop as
    with gone as (
      delete from ${
    tx(defaultTable)
  } where bucket >= ${partition.from} and bucket < ${partition.to} returning *
    )
    select * from gone`;
  // Partition bounds cannot be bound parameters; the name and bounds come from rollupPartition(), which checks
  // them against fixed patterns (digits only), so the text holds no outside input.
  await tx.unsafe(
    `create table "${partition.name}" partition of ${partition.table} ` +
      `for values from ('${partition.from}') to ('${partition.to}')`,
  );
  await tx`insert into ${tx(partition.table)} select * from rollups_moving`;
  await tx`drop table rollups_moving`;
  return moved.count;
}
