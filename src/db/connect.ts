/**
 * The PostgreSQL client of the sink and of `monitor migrate`: one postgres.js pool built from a libpq-style URL,
 * with `sslmode` honoured, Nagle's algorithm off, and the password kept out of logs.
 *
 * @module
 */
import net from "node:net";
import postgres from "postgres";
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
 * Opens a postgres.js pool (lazily: the first query connects). `sslmode` in the URL works as in libpq:
 * `disable`, `allow`, `prefer` (the default), `require` (encrypted, certificate not checked), `verify-ca`
 * (certificate checked against the CA, host name not) and `verify-full` (both). The CA is `caFile` if given, else
 * `sslrootcert` from the URL (`system` meaning the system store), else the system store. With a CA file (or
 * `sslrootcert`) and no `sslmode`, the mode is `verify-full`; with a CA file and `require`, it is `verify-ca`, as
 * in libpq. Connections are opened with TCP_NODELAY (see `connectSocket`).
 *
 * Throws `TypeError` for a URL that is not a `postgres://` URL, `RangeError` for an unknown `sslmode`, and the
 * file-system error if the CA file cannot be read.
 *
 * @example
 * ```ts
 * const sql = await connectDatabase({ url: Deno.env.get("DATABASE_URL")!, caFile: null, log });
 * await sql`select 1`;
 * await sql.end({ timeout: 5 });
 * ```
 */
export async function connectDatabase(options: ConnectOptions): Promise<postgres.Sql> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError(`Cannot connect to the database: the URL is not valid: ${redactUrl(options.url)}`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new TypeError(
      `Cannot connect to the database: the URL must start with postgres:// or postgresql://: got '${url.protocol}//'`,
    );
  }
  const params = url.searchParams;
  const requested = params.get("sslmode");
  const rootCert = params.get("sslrootcert");
  // postgres.js would send unknown query parameters to the server as run-time settings; these two are ours.
  params.delete("sslmode");
  params.delete("sslrootcert");
  if (requested !== null && !(SSL_MODES as readonly string[]).includes(requested)) {
    throw new RangeError(
      `Cannot connect to the database: sslmode must be one of ${SSL_MODES.join(", ")}: got '${requested}'`,
    );
  }
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
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? "monitor",
      ...(options.readOnly ? { default_transaction_read_only: true } : {}),
    },
    ...socket,
  });
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
 * Returns the URL with its password replaced by `***`, for logs and error messages. A string that is not a URL
 * comes back with anything between `://` and `@` hidden.
 *
 * @example
 * ```ts
 * redactUrl("postgres://monitor:s3cret@db:5432/monitor"); // "postgres://monitor:***@db:5432/monitor"
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/^([^:/?#]+:\/\/)[^@/?#]*@/, "$1***@");
  }
}
