/**
 * Partitions of the rollup tables: `rollup_hourly` and the table its trigger keeps (`rollup_day_to_hour`) by
 * UTC month (`rollup_hourly_pYYYYMM`, ...); `rollup_daily` and the tables its triggers keep (`site_daily`,
 * `rollup_monthly`, `rollup_month_to_date`) by UTC year (`rollup_daily_pYYYY`, ...); each group dropped
 * together; made ahead of time
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
import { textArray } from "./_arrays.ts";
import { transaction } from "./_transaction.ts";
import { MONITOR_LOCK_SPACE } from "./migrate.ts";

/** Second half of the advisory lock key held while maintaining rollup partitions. */
export const ROLLUP_PARTITIONS_LOCK = 3;

/** Options of {@linkcode maintainRollupPartitions}. */
export interface RollupPartitionOptions extends MaintenanceOptions {
  /** Days of hourly rollups to keep; 0 keeps everything. Default 400. */
  readonly hourlyRetentionDays?: number;
  /** Days of daily rollups (and of the tables that follow them) to keep; 0 (the default) keeps everything. */
  readonly dailyRetentionDays?: number;
}

/** What {@linkcode maintainRollupPartitions} did: partitions listed in {@linkcode ROLLUP_TABLES}' order. */
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

/**
 * The partitioned rollup tables, in the order they are reported and expired: rollup_hourly's trigger writes
 * rollup_day_to_hour (sql/0006), which follows its monthly partitions; rollup_daily's triggers write the three
 * after it (site_daily: sql/0005; rollup_monthly and rollup_month_to_date: sql/0006), which follow its yearly
 * partitions. Rows a rollup table deletes must still find the rows of the tables that follow it.
 */
export const ROLLUP_TABLES = [
  "rollup_hourly",
  "rollup_day_to_hour",
  "rollup_daily",
  "site_daily",
  "rollup_monthly",
  "rollup_month_to_date",
] as const;
/** One of {@linkcode ROLLUP_TABLES}. */
export type RollupTable = typeof ROLLUP_TABLES[number];
/** The tables partitioned by UTC month (with hourly retention), and by UTC year (daily retention). */
const MONTHLY: readonly RollupTable[] = ["rollup_hourly", "rollup_day_to_hour"];
const YEARLY = ROLLUP_TABLES.filter((table) => !MONTHLY.includes(table));

const NAME = new RegExp(`^((${MONTHLY.join("|")})_p\\d{6}|(${YEARLY.join("|")})_p\\d{4})$`);
const BOUND = /^\d{4}-\d{2}-01T00:00:00Z$/;

/**
 * The partition of `table` that holds `time`: its UTC month for hourly rollups, its UTC year for daily ones
 * (the others).
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
  const partition: RollupPartition = MONTHLY.includes(table)
    ? {
      table,
      name: `${table}_p${year.toString().padStart(4, "0")}${(month + 1).toString().padStart(2, "0")}`,
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
  const hourly = new RegExp(`^(${MONTHLY.join("|")})_p(\\d{4})(\\d{2})$`).exec(name);
  if (hourly) {
    const partition = rollupPartition(
      hourly[1] as RollupTable,
      new Date(Date.UTC(Number(hourly[2]), Number(hourly[3]) - 1, 1)),
    );
    return partition.name === name ? partition : null;
  }
  const daily = new RegExp(`^(${YEARLY.join("|")})_p(\\d{4})$`).exec(name);
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
    ...MONTHLY.flatMap((table) => [rollupPartition(table, now), rollupPartition(table, nextMonth)]),
    ...YEARLY.flatMap((table) => [rollupPartition(table, now), rollupPartition(table, nextYear)]),
  ];
  const cutoff = (table: RollupTable) => {
    const days = MONTHLY.includes(table) ? hourlyDays : dailyDays;
    return days === 0 ? null : now.getTime() - days * DAY_MS;
  };
  return await transaction(sql, async (tx) => {
    const [lock] = await tx<{ locked: boolean }[]>`
      select pg_try_advisory_xact_lock(${MONITOR_LOCK_SPACE}, ${ROLLUP_PARTITIONS_LOCK}) as locked`;
    if (!lock?.locked) return { locked: false, created: [], dropped: [], movedRows: 0 };
    const existing = new Set(
      (await tx<{ name: string }[]>`
        select c.relname as name
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent in (select t::regclass from unnest(${textArray(ROLLUP_TABLES)}::text[]) t)`)
        .map((row) => row.name),
    );
    const missing = wanted.filter((p) => !existing.has(p.name));
    const expired = [...existing].flatMap((name) => {
      const partition = parsePartition(name);
      if (partition === null) return [];
      const before = cutoff(partition.table);
      return before !== null && Date.parse(partition.to) <= before ? [partition] : [];
    }).sort((a, b) =>
      ROLLUP_TABLES.indexOf(a.table) - ROLLUP_TABLES.indexOf(b.table) || a.name.localeCompare(b.name)
    );
    const movedRows = await changePartitions(tx, {
      missing,
      expired,
      lockTimeoutMs,
      lock: () => tx`lock table ${tx([...ROLLUP_TABLES])} in access exclusive mode`,
      create: (partition) => createPartition(tx, partition),
      log: options.log,
    });
    // rollup_daily before the tables its triggers write: they take what it deletes off those tables' rows.
    for (const table of ROLLUP_TABLES) {
      const before = cutoff(table);
      if (before === null) continue;
      // Rows that fell into the default partition (no partition for their time) expire row by row, as few. A
      // rollup_monthly row (bucket: the month's first day) holds the month's days, and goes with the last of them:
      // the days expired before it were taken off it by rollup_daily's trigger.
      const expiredBefore = table === "rollup_monthly" ? startOfUtcMonth(before) : before;
      await tx`delete from ${tx(`${table}_default`)} where bucket < ${new Date(expiredBefore)}`;
    }
    const dailyCutoff = cutoff("rollup_daily");
    if (dailyCutoff !== null) await trimExpiringMonth(tx, startOfUtcMonth(dailyCutoff));
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

/** The start of the UTC month of a time, in ms since 1970. */
function startOfUtcMonth(ms: number): number {
  const time = new Date(ms);
  return Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), 1);
}

/**
 * The month rows (in the default partition) of the month whose first days just expired: each starts at its
 * first day left, or goes when none is left. rollup_daily's trigger took the expired days off their sums, but
 * not off `first_day`, which reports use to tell a day before the month's first from one after its last.
 */
async function trimExpiringMonth(tx: postgres.TransactionSql, monthStart: number): Promise<void> {
  const from = new Date(monthStart);
  const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
  await tx`
    update rollup_monthly_default m set first_day = d.first_day
    from (select site_id, location_id, min(bucket) as first_day from rollup_daily_default
          where bucket >= ${from} and bucket < ${to} group by site_id, location_id) d
    where m.bucket = ${from} and m.site_id = d.site_id and m.location_id = d.location_id
      and m.first_day < d.first_day`;
  await tx`
    delete from rollup_monthly_default m
    where m.bucket = ${from} and not exists (
      select from rollup_daily_default d
      where d.site_id = m.site_id and d.location_id = m.location_id and d.bucket >= ${from} and d.bucket < ${to})`;
}
