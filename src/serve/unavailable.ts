/**
 * Which failures of a read mean "the database cannot serve this now" (a 503 that says so and a retry
 * later) rather than a fault of the program (a 500): the serve side's own judgement, wider than the sink's
 * `isTransient()` in src/db/retry.ts. A status page should say the database is away whether it is down,
 * refuses connections or logins, is missing, overloaded, too slow or not yet migrated; the sink, which must
 * stop on a login refused, cannot treat those alike.
 *
 * @module
 */
import { describeError, isTransient } from "../db/retry.ts";

/** Why the database cannot serve a read, for a 503: the text for the page, and whether it was migrated. */
export interface Unavailable {
  readonly message: string;
  /** False when the database holds none of monitor's tables: `monitor migrate` has not run on it. */
  readonly migrated: boolean;
}

// SQLSTATEs of a database that is there but cannot serve now, besides what the sink waits out too
// (isTransient(): connection failures, a statement or lock timeout, which src/serve/command.ts sets, and
// conflicts).
const UNAVAILABLE_CODES = new Set([
  "55000", // "database … is not currently accepting connections" (ALLOW_CONNECTIONS false)
  "28000", // login refused: no such role, or pg_hba.conf rejects it
  "28P01", // password authentication failed
  "3D000", // the database does not exist
]);

// A relation or function of the schema missing: the database was never migrated (or by an older version).
const NOT_MIGRATED_CODES = new Set(["42P01", "42883"]);

/** The advice of a 503 for a database that holds none of monitor's tables yet. */
export const MIGRATE_ADVICE =
  "The database has not been migrated: run `monitor migrate`, or start `monitor sink`, which migrates it.";

/**
 * Whether `error` says the database cannot serve now, and the message for the 503; null for any other
 * error (a fault to answer with 500). An error without a SQLSTATE or client code is the program's own.
 *
 * @example
 * ```ts
 * const missing = Object.assign(new Error('database "monitor" does not exist'), { code: "3D000" });
 * databaseUnavailable(missing)?.message;
 * // 'Cannot read the database: database "monitor" does not exist (3D000). This page will try again.'
 * databaseUnavailable(new TypeError("x is undefined")); // null
 * ```
 */
export function databaseUnavailable(error: unknown): Unavailable | null {
  // A DeadlineError has a code too (CLIENT_DEADLINE, a connection failure).
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return null;
  const detail = `Cannot read the database: ${describeError(error)}.`;
  if (NOT_MIGRATED_CODES.has(code)) return { message: `${detail} ${MIGRATE_ADVICE}`, migrated: false };
  // 53…: the server is out of connections, memory or disk.
  const away = isTransient(error) || UNAVAILABLE_CODES.has(code) || code.startsWith("53");
  return away ? { message: `${detail} This page will try again.`, migrated: true } : null;
}
