/**
 * The PostgreSQL client of the sink and of `monitor migrate`: one postgres.js pool built from a libpq-style URL,
 * with `sslmode` honoured, Nagle's algorithm off, and the password kept out of logs.
 *
 * @module
 */
import net from "node:net";
import postgres from "postgres";
import { UsageError } from "../args.ts";
import type { Logger } from "../log.ts";

/** Options of {@linkcode connectDatabase}. */
export interface ConnectOptions {
  /** `postgres://user:password@host:port/database?sslmode=verify-full` (libpq style). */
  readonly url: string;
  /** PEM file of the CA that signed the server's certificate; default: the system store. */
  readonly caFile?: string | null;
  readonly log: Logger;
  /** Pool size; default 4 (the sink writes one batch at a time). */
  readonly max?: number;
  /** Seconds to wait for a connection; default 10. */
  readonly connectTimeoutSeconds?: number;
  /**
   * Opens every session with `default_transaction_read_only = on`, so a statement that would write fails
   * (SQLSTATE 25006) even under a role allowed to write: the read side's promise never to write, kept by
   * the server. Default false.
   */
  readonly readOnly?: boolean;
  /** `application_name` the server shows for these connections; default `monitor`. */
  readonly applicationName?: string;
  /**
   * Milliseconds after which the server cancels a statement (`statement_timeout`, SQLSTATE 57014) and a
   * wait for a lock (`lock_timeout`, 55P03) in every session; default: the server's settings. For the read
   * side: a statement the server cancels frees its connection, where a client that gives up on it leaves
   * the server working (or waiting on a lock) for nobody. A writer should not use them.
   */
  readonly timeouts?: { readonly statementMs: number; readonly lockMs: number };
}

/** The `sslmode` values of libpq that this client understands. */
export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
/** One of {@linkcode SSL_MODES}. */
export type SslMode = typeof SSL_MODES[number];

type SslOption = false | "allow" | "prefer" | "require" | {
  ca?: string;
  rejectUnauthorized: true;
  checkServerIdentity?: () => undefined;
};

/**
 * Opens a postgres.js pool (lazily: the first query connects), with TCP_NODELAY on every connection.
 *
 * @param options.url `sslmode` works as in libpq: `disable`, `allow`, `prefer` (the default), `require`
 *   (encrypted, certificate not checked), `verify-ca` (certificate checked against the CA, host name not) and
 *   `verify-full` (both). With a CA and no `sslmode` the mode is `verify-full`; with a CA and `require`, `verify-ca`.
 * @param options.caFile The CA; else `sslrootcert` from the URL (`system` meaning the system store); else the
 *   system store.
 * @throws {TypeError} The URL is not a `postgres://` URL.
 * @throws {RangeError} Its `sslmode` is unknown.
 * @throws {Deno.errors.NotFound} The CA file cannot be read (or another file-system error).
 *
 * @example
 * ```ts
 * import { createLogger } from "../log.ts";
 * const log = createLogger({ format: "text" });
 * const sql = await connectDatabase({ url: Deno.env.get("DATABASE_URL")!, caFile: null, log });
 * await sql`select 1`;
 * await sql.end({ timeout: 5 });
 * ```
 */
export async function connectDatabase(options: ConnectOptions): Promise<postgres.Sql> {
  const url = parseDatabaseUrl(options.url);
  const params = url.searchParams;
  const requested = params.get("sslmode");
  const rootCert = params.get("sslrootcert");
  // postgres.js would send unknown query parameters to the server as run-time settings; these two are ours.
  params.delete("sslmode");
  params.delete("sslrootcert");
  const caPath = options.caFile ?? (rootCert !== null && rootCert !== "system" ? rootCert : null);
  const ca = caPath === null ? undefined : await Deno.readTextFile(caPath);
  const mode = effectiveSslMode(requested as SslMode | null, rootCert !== null || ca !== undefined);
  options.log.info("connecting to the database", { url: redactUrl(options.url), sslmode: mode });
  const connectTimeout = options.connectTimeoutSeconds ?? 10;
  // `socket` is a postgres.js option its type declarations omit.
  const socket: Record<string, unknown> = { socket: connectSocket(connectTimeout) };
  return postgres(url.toString(), {
    ssl: sslOption(mode, ca),
    max: options.max ?? 4,
    connect_timeout: connectTimeout,
    // Every new connection would first read the array types from pg_type, a query postgres.js 3.4.9 starts
    // without awaiting it: when the server drops the connection during that query, its error surfaces as an
    // unhandled rejection that ends the process. The project needs no array types (src/db/_arrays.ts sends
    // arrays as literals with a cast; reads cast arrays to text), so the query is left out.
    fetch_types: false,
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? "monitor",
      ...(options.readOnly ? { default_transaction_read_only: true } : {}),
      ...(options.timeouts === undefined ? {} : {
        statement_timeout: options.timeouts.statementMs,
        lock_timeout: options.timeouts.lockMs,
      }),
    },
    ...socket,
  });
}

/**
 * Parses a libpq-style database URL as {@linkcode connectDatabase} needs it, without connecting: the
 * command line checks `--database-url` with it before anything starts.
 *
 * @throws {TypeError} The text is not a URL, or not a `postgres://` or `postgresql://` one.
 * @throws {RangeError} Its `sslmode` is not one of {@linkcode SSL_MODES}.
 */
export function parseDatabaseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Cannot connect to the database: the URL is not valid: ${redactUrl(text)}`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new TypeError(
      `Cannot connect to the database: the URL must start with postgres:// or postgresql://: got '${url.protocol}//'`,
    );
  }
  const requested = url.searchParams.get("sslmode");
  if (requested !== null && !(SSL_MODES as readonly string[]).includes(requested)) {
    throw new RangeError(
      `Cannot connect to the database: sslmode must be one of ${SSL_MODES.join(", ")}: got '${requested}'`,
    );
  }
  return url;
}

/**
 * Reads `--database-url`, which every command that uses the database requires, and checks its form with
 * {@linkcode parseDatabaseUrl} before any work: a malformed URL is a usage error naming the flag.
 */
export function databaseUrl(value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new UsageError("Cannot connect to the database: set '--database-url' or DATABASE_URL");
  }
  try {
    parseDatabaseUrl(value);
  } catch (error) {
    const detail = (error as Error).message.replace(/^Cannot connect to the database: /, "");
    throw new UsageError(`Cannot use flag '--database-url': ${detail}`, { cause: error });
  }
  return value;
}

/** The part of postgres.js's parsed options a socket factory receives. */
interface SocketTarget {
  readonly host: readonly string[];
  readonly port: readonly number[];
  readonly path: string | false;
}

/**
 * Opens the TCP connection for postgres.js with Nagle's algorithm off. Under Deno, node:net sockets keep it on
 * and postgres.js does not turn it off, so a statement written while the previous one is unacknowledged waits
 * for the server's delayed ACK: measured here, 40 ms after every COPY, and stalls between pipelined statements.
 */
function connectSocket(timeoutSeconds: number): (target: SocketTarget) => Promise<net.Socket> {
  return (target) =>
    new Promise((resolve, reject) => {
      const host = target.host[0] ?? "localhost";
      const port = target.port[0] ?? 5432;
      const socket = target.path ? net.connect(target.path) : net.connect(port, host);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => {
        fail(Object.assign(new Error(`write CONNECT_TIMEOUT ${host}:${port}`), { code: "CONNECT_TIMEOUT" }));
      }, timeoutSeconds * 1000);
      socket.once("error", fail);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", fail);
        socket.setNoDelay(true);
        // postgres.js reads the host name from the socket for TLS SNI and certificate checks.
        Object.assign(socket, { host, port });
        resolve(socket);
      });
    });
}

function effectiveSslMode(requested: SslMode | null, hasCa: boolean): SslMode {
  if (requested === null) return hasCa ? "verify-full" : "prefer";
  if (requested === "require" && hasCa) return "verify-ca";
  return requested;
}

function sslOption(mode: SslMode, ca: string | undefined): SslOption {
  switch (mode) {
    case "disable":
      return false;
    case "allow":
    case "prefer":
    case "require":
      return mode;
    case "verify-ca":
      // The chain is checked; the host name is not (libpq's verify-ca).
      return {
        ...(ca === undefined ? {} : { ca }),
        rejectUnauthorized: true,
        checkServerIdentity: () => undefined,
      };
    case "verify-full":
      return { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: true };
  }
}

/**
 * Returns the URL with its passwords replaced by `***`, for logs and error messages: the one in the userinfo
 * and the libpq parameters `password` and `sslpassword` in the query string. A string that is not a URL
 * comes back with anything between `://` and `@`, and those parameters' values, hidden.
 *
 * @example
 * ```ts
 * redactUrl("postgres://monitor:s3cret@db:5432/monitor"); // "postgres://monitor:***@db:5432/monitor"
 * redactUrl("postgres://db/monitor?user=monitor&password=s3cret"); // "postgres://db/monitor?user=monitor&password=***"
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    for (const key of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAMETER.test(key)) parsed.searchParams.set(key, "***");
    }
    return parsed.toString();
  } catch {
    return url.replace(/^([^:/?#]+:\/\/)[^@/?#]*@/, "$1***@")
      .replace(/([?&](?:ssl)?password=)[^&#]*/gi, "$1***");
  }
}

const SECRET_PARAMETER = /^(ssl)?password$/i;
