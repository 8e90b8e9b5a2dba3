/**
 * `monitor migrate`: applies the migrations the program carries, then exits.
 *
 * @module
 */
import { COMMON_FLAGS, DATABASE_FLAGS, databaseUrl, logFormat, parseFlags } from "../args.ts";
import { connectDatabase, redactUrl } from "../db/connect.ts";
import { migrate } from "../db/migrate.ts";
import { createLogger } from "../log.ts";
import { describeError } from "../db/retry.ts";

/** Help text of `monitor migrate`. */
export const MIGRATE_USAGE = `monitor migrate: create or upgrade the database schema, then exit

USAGE:
  monitor migrate [OPTIONS]

Applies the migrations the program carries, in order, each once, under an advisory lock; running it again
changes nothing.

DATABASE:
  --database-url URL      DATABASE_URL (required)
  --database-ca FILE      CA certificate for sslmode=verify-ca/verify-full (MONITOR_DATABASE_CA)

COMMON:
  --log-format FORMAT     text or json (MONITOR_LOG_FORMAT; default text)
  -h, --help              show this help
`;

const MIGRATE_FLAGS = { ...COMMON_FLAGS, ...DATABASE_FLAGS } as const;

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the database URL flag (kept here for the sink, which imports it from this module). */
export { databaseUrl } from "../args.ts";

/** Runs `monitor migrate`. */
export async function migrateCommand(args: readonly string[], env: Env): Promise<number> {
  const flags = parseFlags(args, MIGRATE_FLAGS, env);
  if (flags.help) {
    console.log(MIGRATE_USAGE);
    return 0;
  }
  const log = createLogger({ format: logFormat(flags["log-format"]) });
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
