/**
 * A cache of TLS leaf-certificate expiry dates per host and port, refreshed in the background so that a
 * probe never waits on an extra handshake, and so a host sees at most one extra handshake per TTL.
 *
 * @module
 */
import { isIP } from "node:net";
import { connect, type TLSSocket } from "node:tls";

/** Options of {@linkcode CertificateCache}. */
export interface CertificateCacheOptions {
  /** How long a looked-up expiry date stays fresh, in milliseconds. Default one hour. */
  readonly ttlMs?: number;
  /** Deadline of one background handshake, in milliseconds. Default 5000. */
  readonly timeoutMs?: number;
}

interface Entry {
  /** The leaf certificate's notAfter as RFC 3339 UTC, or null when never read. */
  readonly value: string | null;
  /** When the last refresh ended (successfully or not), from `Date.now()`. */
  readonly checkedAt: number;
}

/**
 * Certificate expiry per `host:port`, read with `node:tls` (`rejectUnauthorized: false`, so that an
 * invalid certificate's date is still known). Lookups return what is cached and start a refresh when the
 * value is missing or stale; a failed refresh is silent and leaves the previous value.
 *
 * @example
 * ```ts
 * const certificates = new CertificateCache();
 * certificates.expiryFor(new URL("https://example.com/")); // null at first, "2026-12-31T23:59:59.000Z" later
 * await certificates.close();
 * ```
 */
export class CertificateCache {
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, { socket: TLSSocket; done: Promise<void> }>();
  #closed = false;

  constructor({ ttlMs = 3_600_000, timeoutMs = 5000 }: CertificateCacheOptions = {}) {
    if (!(ttlMs >= 0)) {
      throw new RangeError(`Cannot create certificate cache as 'ttlMs' must be >= 0: got ${ttlMs}`);
    }
    if (!(timeoutMs > 0)) {
      throw new RangeError(
        `Cannot create certificate cache as 'timeoutMs' must be positive: got ${timeoutMs}`,
      );
    }
    this.#ttlMs = ttlMs;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * The cached expiry of the certificate served at `url`'s host and port, or null for a non-https URL or
   * while it is unknown. Never blocks: a missing or stale value starts one background refresh.
   */
  expiryFor(url: URL): string | null {
    if (url.protocol !== "https:") return null;
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = url.port === "" ? 443 : Number(url.port);
    const key = `${host}:${port}`;
    const entry = this.#entries.get(key);
    const stale = entry === undefined || Date.now() - entry.checkedAt >= this.#ttlMs;
    if (stale && !this.#closed && !this.#inFlight.has(key)) this.#refresh(key, host, port);
    return entry?.value ?? null;
  }

  /** Resolves when no refresh is in flight (refreshes started meanwhile included). */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.all([...this.#inFlight.values()].map((refresh) => refresh.done));
    }
  }

  /** Stops starting refreshes, aborts the ones in flight and waits until their sockets are closed. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const refresh of this.#inFlight.values()) refresh.socket.destroy();
    await this.settled();
  }

  #refresh(key: string, host: string, port: number): void {
    let socket: TLSSocket;
    try {
      // SNI must be a host name: RFC 6066 forbids IP addresses there.
      socket = connect({
        host,
        port,
        rejectUnauthorized: false,
        ...(isIP(host) === 0 ? { servername: host } : {}),
      });
    } catch {
      this.#entries.set(key, { value: this.#entries.get(key)?.value ?? null, checkedAt: Date.now() });
      return;
    }
    const done = new Promise<void>((resolve) => {
      let value: string | null = null;
      const timer = setTimeout(() => socket.destroy(), this.#timeoutMs);
      socket.once("secureConnect", () => {
        value = expiryOf(socket.getPeerCertificate().valid_to);
        socket.destroy();
      });
      socket.once("error", () => socket.destroy());
      socket.once("close", () => {
        clearTimeout(timer);
        const previous = this.#entries.get(key)?.value ?? null;
        this.#entries.set(key, { value: value ?? previous, checkedAt: Date.now() });
        this.#inFlight.delete(key);
        resolve();
      });
    });
    this.#inFlight.set(key, { socket, done });
  }
}

/** Converts OpenSSL's `valid_to` text ("Dec 23 12:00:00 2026 GMT") to RFC 3339 UTC, or null if unparsable. */
function expiryOf(validTo: string | undefined): string | null {
  if (validTo === undefined || validTo === "") return null;
  const time = Date.parse(validTo);
  return Number.isNaN(time) ? null : new Date(time).toISOString();
}
