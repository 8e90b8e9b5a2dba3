/**
 * The start-up sequence of `monitor sink` against PostgreSQL: wait for the database, apply the migrations (or,
 * with `--no-migrate`, wait until they are applied), and create (and retire) the partitions of the checks and
 * rollup tables; and the partition maintenance that the running sink repeats every hour.
 *
 * @module
 */
import type { DatabaseHandle } from "../db/handle.ts";
import { migrate, pendingMigrations } from "../db/migrate.ts";
import { maintainPartitions } from "../db/partitions.ts";
import { maintainRollupPartitions } from "../db/rollup_partitions.ts";
import { isTransient, retrying } from "../db/retry.ts";
import type { Logger } from "../log.ts";

/**
 * How long one database call may take before the pool is replaced (see src/db/handle.ts): shorter than the
 * consumer's session timeout (20 s, src/sink/group_consumer.ts), so a slow database costs a retry, not the group
 * membership.
 */
export const DATABASE_DEADLINE_MS = 15_000;
/** Migrations may rewrite tables; they get longer. */
const MIGRATION_DEADLINE_MS = 120_000;
/** The first contact: a `select 1` that a reachable server answers at once. */
export const CONNECT_DEADLINE_MS = 5_000;

/** What {@linkcode prepareDatabase} and {@linkcode partitionMaintenance} need, read from the flags. */
export interface PrepareOptions {
  /** Apply the migrations (false with `--no-migrate`). */
  readonly migrate: boolean;
  readonly retentionDays: number;
  readonly hourlyRetentionDays: number;
  readonly dailyRetentionDays: number;
  readonly log: Logger;
  readonly shutdown: AbortSignal;
}

/** One round of partition maintenance: the raw checks' partitions, then the rollups'. */
export function partitionMaintenance(db: DatabaseHandle, options: PrepareOptions): () => Promise<void> {
  const { log } = options;
  return () =>
    db.run(
      "maintain partitions",
      async (sql) => {
        await maintainPartitions(sql, { retentionDays: options.retentionDays, log });
        await maintainRollupPartitions(sql, {
          hourlyRetentionDays: options.hourlyRetentionDays,
          dailyRetentionDays: options.dailyRetentionDays,
          log,
        });
      },
      DATABASE_DEADLINE_MS,
    );
}

/**
 * Waits for the database, applies the migrations and prepares the partitions, each retried until it
 * succeeds or `shutdown` aborts; `maintain` is the round from {@linkcode partitionMaintenance}.
 */
export async function prepareDatabase(
  db: DatabaseHandle,
  options: PrepareOptions,
  maintain: () => Promise<void>,
): Promise<void> {
  const { log, shutdown } = options;
  // The database is waited for like the broker: a sink started before its database keeps trying.
  await retrying(
    log,
    shutdown,
    "connect to the database",
    () => db.run("connect to the database", (sql) => sql`select 1`, CONNECT_DEADLINE_MS),
  );
  if (options.migrate) {
    await retrying(
      log,
      shutdown,
      "apply migrations",
      () => db.run("apply migrations", (sql) => migrate(sql, log), MIGRATION_DEADLINE_MS),
    );
  } else {
    // The writer needs the schema it was written for: wait for `monitor migrate` (say, run by the deployment
    // before the sinks are rolled) rather than fail batch after batch.
    await retrying(log, shutdown, "find the database's schema up to date", async () => {
      const pending = await db.run("read migrations", (sql) => pendingMigrations(sql), DATABASE_DEADLINE_MS);
      if (pending.length > 0) throw new SchemaBehind(pending);
    }, (error) => error instanceof SchemaBehind || isTransient(error));
  }
  await retrying(log, shutdown, "prepare partitions", maintain);
}

/** The database lacks migrations this program carries. */
class SchemaBehind extends Error {
  constructor(pending: readonly string[]) {
    super(
      `the database lacks migration${pending.length === 1 ? "" : "s"} ${pending.join(", ")}: run ` +
        "'monitor migrate', or start the sink without --no-migrate",
    );
    this.name = "SchemaBehind";
  }
}
