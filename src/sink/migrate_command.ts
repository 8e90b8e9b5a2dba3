/**
 * `monitor migrate`: applies the migrations the program carries, then exits.
 *
 * @module
 */
import {
  COMMON_FLAGS,
  COMMON_SECTION,
  DATABASE_FLAGS,
  DATABASE_SECTION,
  logOptions,
  parseFlags,
} from "../args.ts";
import type { CommandDefinition, CommandHelp } from "../help.ts";
import { connectDatabase, databaseUrl, redactUrl } from "../db/connect.ts";
import { migrate } from "../db/migrate.ts";
import { createLogger } from "../log.ts";
import { describeError } from "../db/retry.ts";

const MIGRATE_FLAGS = { ...DATABASE_FLAGS, ...COMMON_FLAGS } as const;

/** Help of `monitor migrate`. */
export const MIGRATE_HELP: CommandHelp = {
  command: "monitor migrate",
  summary: "create or upgrade the database schema, then exit",
  about: "Applies the migrations the program carries, in order, each once, under an advisory lock; " +
    "running it again changes nothing.",
  sections: [DATABASE_SECTION, COMMON_SECTION],
};

/** `monitor migrate` for the command table of `main.ts`. */
export const MIGRATE_COMMAND: CommandDefinition = {
  help: MIGRATE_HELP,
  flags: MIGRATE_FLAGS,
  run: migrateCommand,
};

type Env = Readonly<Record<string, string | undefined>>;

/** Runs `monitor migrate`. */
export async function migrateCommand(args: readonly string[], env: Env): Promise<number> {
  const flags = parseFlags(args, MIGRATE_FLAGS, env);
  const log = createLogger(logOptions(flags));
  const url = databaseUrl(flags["database-url"]);
  const sql = await connectDatabase({
    url,
    caFile: flags["database-ca"] ?? null,
    log,
    connectTimeoutSeconds: 5,
  });
  try {
    let applied: string[];
    try {
      applied = await migrate(sql, log);
    } catch (error) {
      throw new Error(`Cannot apply migrations: ${describeError(error)}`, { cause: error });
    }
    log.info(applied.length > 0 ? "migrations applied" : "schema up to date", {
      applied,
      database: redactUrl(url),
    });
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
