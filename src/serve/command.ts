/**
 * `monitor serve`: the status page, JSON API, badges and per-site metrics over HTTP, read from the database
 * with a read-only session (it never writes, and works under a role that may only SELECT).
 *
 * @module
 */
import {
  COMMON_FLAGS,
  COMMON_SECTION,
  DATABASE_FLAGS,
  DATABASE_SECTION,
  type FlagSpec,
  logOptions,
  parseFlags,
  UsageError,
} from "../args.ts";
import { connectDatabase, databaseUrl, redactUrl } from "../db/connect.ts";
import { DatabaseHandle } from "../db/handle.ts";
import type { CommandDefinition, CommandHelp } from "../help.ts";
import { createLogger } from "../log.ts";
import { createHandler } from "./routes.ts";

const SERVE_OPTIONS = {
  listen: {
    type: "string",
    env: "MONITOR_LISTEN",
    arg: "HOST:PORT",
    description: "where to listen; :PORT for every interface",
    default: "127.0.0.1:8080",
  },
  title: {
    type: "string",
    env: "MONITOR_TITLE",
    arg: "TEXT",
    description: "the pages' title",
    default: "monitor",
  },
} as const satisfies Record<string, FlagSpec>;

const SERVE_FLAGS = { ...SERVE_OPTIONS, ...DATABASE_FLAGS, ...COMMON_FLAGS } as const;

/** Help of `monitor serve`. */
export const SERVE_HELP: CommandHelp = {
  command: "monitor serve",
  summary: "the status page, JSON API, badges and Prometheus metrics over HTTP",
  about:
    "Reads the database the sink writes, in read-only sessions (a role with SELECT alone is enough), and " +
    "serves: / every site (?q=NAME&state=up|degraded|down|stale&page=N&per_page=N); /sites/NAME one site; " +
    "/api/sites, /api/sites/NAME and /api/incidents as JSON; /badge/NAME.svg and " +
    "/badge/NAME/uptime.svg?period=30d; /metrics for Prometheus; /healthz (200 when the database answers " +
    "and was migrated).",
  sections: [{ title: "OPTIONS", flags: SERVE_OPTIONS }, DATABASE_SECTION, COMMON_SECTION],
};

/** `monitor serve` for the command table of `main.ts`. */
export const SERVE_COMMAND: CommandDefinition = { help: SERVE_HELP, flags: SERVE_FLAGS, run: serveCommand };

type Env = Readonly<Record<string, string | undefined>>;

/**
 * How long one page's reads may take, waiting for a connection included, before the page answers 503 and
 * the pool is replaced (src/db/handle.ts: the other pages' reads under way go on).
 */
export const READ_DEADLINE_MS = 10_000;

/**
 * The server cancels a statement of serve's sessions past these (each page answers 503 on its own, and the
 * connection is free again), so a slow query or a table locked by someone else is not a deadline that
 * replaces the pool while its backends stay busy on the server. Statements below the deadline leave room for
 * the wait for a connection. A read waits for a lock only behind DDL or someone's `lock table`, and the
 * reads queued on a connection behind it wait in turn, so that wait is cut short. Safe because serve only
 * reads.
 */
export const READ_TIMEOUTS = { statementMs: 8_000, lockMs: 2_000 } as const;

/** Parses `HOST:PORT` or `:PORT` for `--listen`. */
export function parseListen(value: string): { hostname: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]*):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port > 65_535) {
    throw new UsageError(`Cannot use flag '--listen': expected HOST:PORT or :PORT: got '${value}'`);
  }
  const host = match[1]!.replace(/^\[|\]$/g, "");
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

/** Runs `monitor serve` until `shutdown` aborts. */
export async function serveCommand(
  args: readonly string[],
  env: Env,
  shutdown: AbortSignal,
): Promise<number> {
  const flags = parseFlags(args, SERVE_FLAGS, env);
  const log = createLogger(logOptions(flags));
  const { hostname, port } = parseListen(flags.listen ?? "127.0.0.1:8080");
  const title = flags.title ?? "monitor";
  const url = databaseUrl(flags["database-url"]);
  const open = () =>
    connectDatabase({
      url,
      caFile: flags["database-ca"] ?? null,
      log,
      max: 8,
      connectTimeoutSeconds: 5,
      readOnly: true,
      applicationName: "monitor serve",
      timeouts: READ_TIMEOUTS,
    });
  const db = new DatabaseHandle(open, await open());
  try {
    const handler = createHandler({
      title,
      log,
      read: (what, call) => db.run(what, call, READ_DEADLINE_MS),
    });
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({ hostname, port, signal: shutdown, onListen: () => {} }, handler);
    } catch (error) {
      throw new Error(`Cannot listen on ${hostname}:${port}: ${(error as Error).message}`, { cause: error });
    }
    const address = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.addr.port}/`;
    log.info("serving", { address, database: redactUrl(url) });
    await server.finished;
    log.info("stopped");
    return 0;
  } finally {
    await db.end(5);
  }
}
