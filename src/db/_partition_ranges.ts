/**
 * What the maintenance of `checks` partitions and of rollup partitions share: checking the day counts and the
 * time they are given, listing the partitions that exist, and creating and dropping partitions under the DDL
 * lock. Private to `partitions.ts` and `rollup_partitions.ts`.
 *
 * @module
 */
import type postgres from "postgres";
import type { Logger } from "../log.ts";

/** Milliseconds in a day. */
export const DAY_MS = 86_400_000;

/** Options that the maintenance of raw and of rollup partitions both take. */
export interface MaintenanceOptions {
  /** The current time; default the clock. */
  readonly now?: Date;
  /** How long to wait for the table locks DDL needs before failing (so writers never queue behind a long
   * report query for long); default 5000 ms. */
  readonly lockTimeoutMs?: number;
  readonly log: Logger;
}

/** What the maintenance of raw and of rollup partitions both report. */
export interface MaintenanceReport {
  /** False when another process held the maintenance lock, and nothing was done. */
  readonly locked: boolean;
  /** Partitions created, in date order (per table). */
  readonly created: readonly string[];
  /** Partitions dropped, in date order (per table). */
  readonly dropped: readonly string[];
  /** Rows moved from a default partition into partitions just created. */
  readonly movedRows: number;
}
/**
 * The lock timeout of `options` (default 5000 ms) when it is a positive whole number of milliseconds.
 *
 * @throws {RangeError} Any other value.
 *
 * @example
 * ```ts
 * checkLockTimeout({}); // 5000
 * ```
 */
export function checkLockTimeout(options: Pick<MaintenanceOptions, "lockTimeoutMs">): number {
  const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 1) {
    throw new RangeError(
      `Cannot maintain partitions as 'lockTimeoutMs' must be a positive integer: current value is ${lockTimeoutMs}`,
    );
  }
  return lockTimeoutMs;
}

const MAX_DAYS = 36_500;

/**
 * `value` when it is a whole number of days from 0 to 36,500.
 *
 * @throws {RangeError} Any other value, naming the option.
 *
 * @example
 * ```ts
 * checkDays("retentionDays", 90); // 90
 * ```
 */
export function checkDays(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_DAYS) {
    throw new RangeError(
      `Cannot maintain partitions as '${name}' must be an integer from 0 to ${MAX_DAYS}: current value is ${value}`,
    );
  }
  return value;
}

/**
 * `now`, or the clock when it is not given.
 *
 * @throws {RangeError} An invalid date.
 *
 * @example
 * ```ts
 * checkNow(undefined); // the current time
 * ```
 */
export function checkNow(now: Date | undefined): Date {
  const time = now ?? new Date();
  if (Number.isNaN(time.getTime())) {
    throw new RangeError("Cannot maintain partitions as 'now' is an invalid date");
  }
  return time;
}

/** What {@linkcode changePartitions} creates and drops, and how. */
export interface PartitionChanges<P extends { readonly name: string }> {
  /** Partitions to create, in this order. */
  readonly missing: readonly P[];
  /** Partitions to drop, in this order. */
  readonly expired: readonly P[];
  readonly lockTimeoutMs: number;
  /** Takes the table locks the DDL needs (run only when there is something to create or drop). */
  readonly lock: () => Promise<unknown>;
  /** Creates one partition, returning the rows it moved out of a default partition. */
  readonly create: (partition: P) => Promise<number>;
  readonly log: Logger;
}

/**
 * Creates the missing partitions and drops the expired ones inside the caller's transaction, waiting at most
 * `lockTimeoutMs` for each table lock.
 *
 * @returns The rows moved out of default partitions.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import { silentLogger as log } from "../log.ts";
 * declare const tx: postgres.TransactionSql;
 * const moved = await changePartitions(tx, {
 *   missing: [], expired: [{ name: "checks_p20260101" }], lockTimeoutMs: 5000,
 *   lock: () => tx`lock table checks in access exclusive mode`, create: () => Promise.resolve(0), log,
 * });
 * ```
 */
export async function changePartitions<P extends { readonly name: string }>(
  tx: postgres.TransactionSql,
  changes: PartitionChanges<P>,
): Promise<number> {
  let movedRows = 0;
  if (changes.missing.length > 0 || changes.expired.length > 0) {
    await tx`select set_config('lock_timeout', ${`${changes.lockTimeoutMs}ms`}, true)`;
    await changes.lock();
  }
  for (const partition of changes.missing) {
    movedRows += await changes.create(partition);
    changes.log.info("created partition", { partition: partition.name });
  }
  for (const partition of changes.expired) {
    await tx`drop table ${tx(partition.name)}`;
    changes.log.info("dropped partition", { partition: partition.name });
  }
  return movedRows;
}
