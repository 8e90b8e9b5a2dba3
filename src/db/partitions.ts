/**
 * Daily partitions of `checks`: made ahead of time, dropped past the retention period. The sink runs
 * {@linkcode maintainPartitions} at start and periodically; several sinks may run it at once.
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

/** Second half of the advisory lock key held while maintaining partitions. */
export const PARTITIONS_LOCK = 2;

const NAME = /^checks_p(\d{4})(\d{2})(\d{2})$/;
const BOUND = /^\d{4}-\d{2}-\d{2}T00:00:00Z$/;

/** Options of {@linkcode maintainPartitions}. */
export interface PartitionOptions extends MaintenanceOptions {
  /** Days after today to have partitions for; default 7. */
  readonly aheadDays?: number;
  /** Days of checks to keep; 0 keeps everything. Default 90. */
  readonly retentionDays?: number;
}

/** What {@linkcode maintainPartitions} did; partitions are named e.g. `checks_p20261123`. */
export interface PartitionReport extends MaintenanceReport {
  /** Rows deleted from the default partition for being older than the retention period. */
  readonly expiredRows: number;
}

/** A day's partition: its name and bounds, built only from a UTC date (never from outside text). */
export interface DailyPartition {
  readonly name: string;
  /** Inclusive lower bound, RFC 3339. */
  readonly from: string;
  /** Exclusive upper bound, RFC 3339. */
  readonly to: string;
}

/**
 * Names and bounds the partition of the UTC day that contains `time`.
 *
 * @example
 * ```ts
 * dailyPartition(new Date("2026-11-23T10:00:00Z"));
 * // { name: "checks_p20261123", from: "2026-11-23T00:00:00Z", to: "2026-11-24T00:00:00Z" }
 * ```
 */
export function dailyPartition(time: Date): DailyPartition {
  const start = Math.floor(time.getTime() / DAY_MS) * DAY_MS;
  if (!Number.isFinite(start)) throw new RangeError("Cannot name a partition: the date is invalid");
  const from = new Date(start).toISOString().slice(0, 10);
  const to = new Date(start + DAY_MS).toISOString().slice(0, 10);
  const partition = {
    name: `checks_p${from.replaceAll("-", "")}`,
    from: `${from}T00:00:00Z`,
    to: `${to}T00:00:00Z`,
  };
  // Years outside 0000-9999 print with a sign; such a name or bound must never reach SQL text.
  if (!NAME.test(partition.name) || !BOUND.test(partition.from) || !BOUND.test(partition.to)) {
    throw new RangeError(`Cannot name a partition: the date is out of range: ${from}`);
  }
  return partition;
}

/** The day a partition name stands for, or null for a name not of the form `checks_pYYYYMMDD`. */
function partitionDay(name: string): Date | null {
  const match = NAME.exec(name);
  if (!match) return null;
  const day = new Date(`${match[1]}-${match[2]}-${match[3]}T00:00:00Z`);
  return Number.isNaN(day.getTime()) || dailyPartition(day).name !== name ? null : day;
}

/**
 * Creates the missing daily partitions and drops those past retention, in one transaction under an advisory lock.
 *
 * Partitions from yesterday through today + `aheadDays` are made, each taking the rows of its range that were
 * stored in the default partition meanwhile; unless `retentionDays` is 0, partitions whose whole range is older
 * than `now - retentionDays` are dropped and such rows deleted from the default partition.
 *
 * @returns `locked: false` at once when another caller holds the lock.
 * @throws {RangeError} Invalid options, before any work.
 * @throws {postgres.PostgresError} A database error (such as a lock timeout, SQLSTATE 55P03); nothing changed.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import { createLogger } from "../log.ts";
 * declare const sql: postgres.Sql;
 * const log = createLogger({ format: "json" });
 * const report = await maintainPartitions(sql, { retentionDays: 90, log });
 * log.info("partitions maintained", { created: report.created, dropped: report.dropped });
 * ```
 */
export async function maintainPartitions(
  sql: postgres.Sql,
  options: PartitionOptions,
): Promise<PartitionReport> {
  const aheadDays = checkDays("aheadDays", options.aheadDays ?? 7);
  const retentionDays = checkDays("retentionDays", options.retentionDays ?? 90);
  const now = checkNow(options.now);
  const lockTimeoutMs = checkLockTimeout(options);
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  const wanted: DailyPartition[] = [];
  for (let day = -1; day <= aheadDays; day++) wanted.push(dailyPartition(new Date(today + day * DAY_MS)));
  const cutoff = retentionDays === 0 ? null : new Date(now.getTime() - retentionDays * DAY_MS);

  return await transaction(sql, async (tx) => {
    const [lock] = await tx<{ locked: boolean }[]>`
      select pg_try_advisory_xact_lock(${MONITOR_LOCK_SPACE}, ${PARTITIONS_LOCK}) as locked`;
    if (!lock?.locked) {
      options.log.debug("partition maintenance skipped: another process holds the lock");
      return { locked: false, created: [], dropped: [], movedRows: 0, expiredRows: 0 };
    }
    const existing = new Set(
      (await tx<{ name: string }[]>`
        select c.relname as name
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'checks'::regclass`).map((row) => row.name),
    );
    const missing = wanted.filter((partition) => !existing.has(partition.name));
    const expired = cutoff === null ? [] : [...existing].flatMap((name) => {
      const day = partitionDay(name);
      return day !== null && day.getTime() + DAY_MS <= cutoff.getTime() ? [dailyPartition(day)] : [];
    }).sort((a, b) => a.name.localeCompare(b.name));

    const movedRows = await changePartitions(tx, {
      missing,
      expired,
      lockTimeoutMs,
      // What CREATE ... PARTITION OF and DROP take anyway, taken first: no writer can add a row to the default
      // partition between the count in createPartition and the CREATE (which would then fail).
      lock: () => tx`lock table checks in access exclusive mode`,
      create: (partition) => createPartition(tx, partition),
      log: options.log,
    });
    let expiredRows = 0;
    if (cutoff !== null) {
      expiredRows = (await tx`delete from checks_default where started_at < ${cutoff}`).count;
      if (expiredRows > 0) {
        options.log.info("deleted expired rows from the default partition", { rows: expiredRows });
      }
    }
    return {
      locked: true,
      created: missing.map((partition) => partition.name),
      dropped: expired.map((partition) => partition.name),
      movedRows,
      expiredRows,
    };
  });
}

/** Creates one partition, first moving its rows out of the default partition (CREATE fails otherwise). */
async function createPartition(tx: postgres.TransactionSql, partition: DailyPartition): Promise<number> {
  const [row] = await tx<{ rows: number }[]>`
    select count(*)::int as rows from checks_default where started_at >= ${partition.from} and started_at < ${partition.to}`;
  const rows = row?.rows ?? 0;
  if (rows > 0) {
    await tx`create temp table checks_moving (like checks) on commit drop`;
    await tx`
      with moved as (
        delete from checks_default where started_at >= ${partition.from} and started_at < ${partition.to} returning *
      )
      insert into checks_moving select * from moved`;
  }
  // Partition bounds cannot be bound parameters. The name and bounds come from dailyPartition(), which builds
  // them from a date and checks them against fixed patterns (digits only), so the text holds no outside input.
  await tx.unsafe(
    `create table "${partition.name}" partition of checks for values from ('${partition.from}') to ('${partition.to}')`,
  );
  if (rows > 0) {
    await tx`insert into checks select * from checks_moving`;
    await tx`drop table checks_moving`;
  }
  return rows;
}
