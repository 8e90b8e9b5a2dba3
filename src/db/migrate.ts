/**
 * `monitor migrate`: applies the numbered SQL files of `sql/` in order, each once, recorded in
 * `schema_migrations`. The files are read relative to this module, so a binary compiled with `--include sql`
 * carries them.
 *
 * @module
 */
import type postgres from "postgres";
import type { Logger } from "../log.ts";
import { transaction } from "./_transaction.ts";

/** Where the migrations are: `sql/` at the project root (inside the binary when compiled). */
export const MIGRATIONS_DIR: URL = new URL("../../sql/", import.meta.url);

// Advisory lock keys of this program: (MONITOR_LOCK_SPACE, n). Each task that must not run twice at once has its n.
/** First half of every advisory lock key `monitor` takes (ASCII "mon" + 1). */
export const MONITOR_LOCK_SPACE = 0x6d6f6e01;
/** Second half of the key held while migrating. */
export const MIGRATE_LOCK = 1;

/** One migration file. */
export interface Migration {
  /** File name, e.g. `0001_schema.sql`; the key in `schema_migrations`. */
  readonly name: string;
  /** The number the file name starts with. */
  readonly number: number;
  /** Hex SHA-256 of the file's bytes. */
  readonly checksum: string;
  readonly text: string;
}

/** Options of {@linkcode migrate}, for tests. */
export interface MigrateOptions {
  /** The folder of migration files; default {@linkcode MIGRATIONS_DIR}. */
  readonly directory?: URL;
}

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

/**
 * Reads the migrations of a folder, in order. Every `.sql` file must be named `NNNN_words.sql` (four digits,
 * then lower-case letters, digits and underscores) with a number no other file has.
 *
 * @example
 * ```ts
 * const migrations = await readMigrations(MIGRATIONS_DIR);
 * ```
 */
export async function readMigrations(directory: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for await (const entry of Deno.readDir(directory)) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    const match = FILE_NAME.exec(entry.name);
    if (!match) {
      throw new SyntaxError(
        `Cannot read migrations: file name '${entry.name}' must look like '0001_words.sql' (digits, underscore, a-z, 0-9)`,
      );
    }
    const bytes = await Deno.readFile(new URL(entry.name, directory));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    migrations.push({
      name: entry.name,
      number: Number(match[1]),
      checksum: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
      text: new TextDecoder().decode(bytes),
    });
  }
  migrations.sort((a, b) => a.number - b.number);
  for (let i = 1; i < migrations.length; i++) {
    const [previous, current] = [migrations[i - 1]!, migrations[i]!];
    if (previous.number === current.number) {
      throw new RangeError(
        `Cannot read migrations: '${previous.name}' and '${current.name}' have the same number`,
      );
    }
  }
  return migrations;
}

/**
 * Applies the migrations that the database has not applied yet, in order, in one transaction under an advisory
 * lock: two programs migrating at once apply each file once, and a failing file leaves the database as it was.
 *
 * @returns The names of the files applied; empty when the database is up to date.
 * @throws {Error} A file was applied before with different content; nothing is applied.
 * @throws {postgres.PostgresError} A database error, with its SQLSTATE `code`.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import { silentLogger as log } from "../log.ts";
 * declare const sql: postgres.Sql;
 * const applied = await migrate(sql, log); // ["0001_schema.sql"] the first time, [] afterwards
 * ```
 */
export async function migrate(
  sql: postgres.Sql,
  log: Logger,
  options: MigrateOptions = {},
): Promise<string[]> {
  const migrations = await readMigrations(options.directory);
  return await transaction(sql, async (tx) => {
    await tx`select pg_advisory_xact_lock(${MONITOR_LOCK_SPACE}, ${MIGRATE_LOCK})`;
    await tx`
      create table if not exists schema_migrations (
        name       text primary key,
        checksum   text not null,
        applied_at timestamptz not null default now()
      )`;
    const rows = await tx<{ name: string; checksum: string }[]>`select name, checksum from schema_migrations`;
    const applied = new Map(rows.map((row) => [row.name, row.checksum]));
    const known = new Set(migrations.map((m) => m.name));
    for (const name of applied.keys()) {
      if (!known.has(name)) {
        log.warn("the database has a migration this program does not know (a newer version applied it)", {
          migration: name,
        });
      }
    }
    const pending: Migration[] = [];
    for (const migration of migrations) {
      const checksum = applied.get(migration.name);
      if (checksum === undefined) pending.push(migration);
      else if (checksum !== migration.checksum) {
        throw new Error(
          `Cannot migrate: migration '${migration.name}' was changed after it was applied: ` +
            `checksum ${checksum} in the database, ${migration.checksum} in the file`,
        );
      }
    }
    const names: string[] = [];
    for (const migration of pending) {
      log.info("applying migration", { migration: migration.name });
      // A migration is a script of several statements without parameters: the simple query protocol runs it.
      await tx.unsafe(migration.text);
      await tx`insert into schema_migrations (name, checksum) values (${migration.name}, ${migration.checksum})`;
      names.push(migration.name);
    }
    return names;
  });
}

/**
 * The names of the migrations this program carries that the database has not applied, in order: all of them
 * when it has none. For a program that runs without migrating and needs the schema it was written for.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const pending = await pendingMigrations(sql); // [] when the database is up to date
 * ```
 */
export async function pendingMigrations(sql: postgres.Sql, options: MigrateOptions = {}): Promise<string[]> {
  const migrations = await readMigrations(options.directory);
  const [table] = await sql<[{ exists: boolean }]>`
    select to_regclass('schema_migrations') is not null as exists`;
  if (!table.exists) return migrations.map((m) => m.name);
  const rows = await sql<{ name: string }[]>`select name from schema_migrations`;
  const applied = new Set(rows.map((row) => row.name));
  return migrations.filter((m) => !applied.has(m.name)).map((m) => m.name);
}
