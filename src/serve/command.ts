/**
 * `monitor serve`: the status page, JSON API, badges and per-site metrics over HTTP, read from the database
 * with a read-only session (it never writes, and works under a role that may only SELECT).
 *
 * @module
 */
import { COMMON_FLAGS, DATABASE_FLAGS, databaseUrl, logFormat, parseFlags, UsageError } from "../args.ts";
import { connectDatabase, redactUrl } from "../db/connect.ts";
import { DatabaseHandle } from "../db/handle.ts";
import { createLogger } from "../log.ts";
import { createHandler } from "./routes.ts";

/** Help text of `monitor serve`. */
export const SERVE_USAGE = `monitor serve: the status page, JSON API, badges and Prometheus metrics over HTTP

USAGE:
  monitor serve [OPTIONS]

Reads the database the sink writes (read-only: a role with SELECT alone is enough) and serves:
  /                          every site: state, locations, uptime 24 h / 7 d / 30 d, 90 daily bars,
                             24 h response times; ?q=NAME&state=up|degraded|down|stale&page=N&per_page=N
  /sites/NAME                one site: locations, percentiles over time, incidents, failed checks
  /api/sites, /api/sites/NAME, /api/incidents    the same as JSON
  /badge/NAME.svg, /badge/NAME/uptime.svg?period=30d                 badges
  /metrics                   Prometheus: per site and location (blackbox_exporter style) and site state
  /healthz                   200 when the database answers, else 503

OPTIONS:
  --listen HOST:PORT      where to listen (MONITOR_LISTEN; default 127.0.0.1:8080); :PORT for every interface
  --title TEXT            the pages' title (MONITOR_TITLE; default "monitor")

DATABASE:
  --database-url URL      DATABASE_URL (required), e.g. postgres://monitor_read@db:5432/monitor
  --database-ca FILE      CA certificate for sslmode=verify-ca/verify-full (MONITOR_DATABASE_CA)

COMMON:
  --log-format FORMAT     text or json (MONITOR_LOG_FORMAT; default text)
  -h, --help              show this help
`;

const SERVE_FLAGS = {
  ...COMMON_FLAGS,
  ...DATABASE_FLAGS,
  listen: { type: "string", env: "MONITOR_LISTEN" },
  title: { type: "string", env: "MONITOR_TITLE" },
} as const;

type Env = Readonly<Record<string, string | undefined>>;

/** How long one page's reads may take before the pool is replaced and the page answers 503. */
const READ_DEADLINE_MS = 10_000;

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
  if (flags.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const log = createLogger({ format: logFormat(flags["log-format"]) });
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
