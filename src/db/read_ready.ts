/**
 * "Can the read side serve?": whether the database answers and was migrated, for `/healthz`, without
 * touching a table: a catalog lookup takes no lock, so a table locked by someone else (which makes the pages
 * that read it wait) does not make the database look away.
 *
 * @module
 */
import type postgres from "postgres";

/**
 * Whether the database holds `site_status`, the view every page reads (false before `monitor migrate`).
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const migrated = await readMigrated(sql);
 * ```
 */
export async function readMigrated(sql: postgres.Sql): Promise<boolean> {
  const [row] = await sql<{ migrated: boolean }[]>`select to_regclass('site_status') is not null as migrated`;
  return row!.migrated;
}
