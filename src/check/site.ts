/**
 * The resolved, validated configuration of one monitored site: what `src/check/config.ts` produces from
 * sites.toml and what the scheduler and the prober consume. Nothing downstream re-validates it.
 *
 * @module
 */

/** An inclusive range of accepted HTTP status codes, e.g. 200-399. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/** One site to probe, with every default applied. */
export interface Site {
  /** Unique within the config; the Kafka message key. */
  readonly name: string;
  /** An http: or https: URL, credentials included: used for the request only. */
  readonly url: string;
  /** The URL as it may be shown and published: credentials (`user:password@`) replaced by `***@`. */
  readonly shownUrl: string;
  /** Time between probes, in milliseconds (at least 1000). */
  readonly intervalMs: number;
  /** Deadline of a whole probe, body included, in milliseconds (not over the interval). */
  readonly timeoutMs: number;
  /** HTTP method, upper case. Default "GET". */
  readonly method: string;
  /** Request headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** Request body, or null. */
  readonly body: string | null;
  /** Accepted status codes. Default [{ min: 200, max: 399 }]. */
  readonly expectStatus: readonly StatusRange[];
  /** The pattern the body must match, or null. */
  readonly regex: RegExp | null;
  /** Whether the prober follows redirects (itself, at most 10 hops). Default true. */
  readonly followRedirects: boolean;
  /** How much of the body is read (for the regex and the byte count); reading stops there. Default 1 MiB. */
  readonly maxBodyBytes: number;
}

/** Whether `status` is one of the site's accepted codes. */
export function isExpectedStatus(site: Pick<Site, "expectStatus">, status: number): boolean {
  return site.expectStatus.some((range) => status >= range.min && status <= range.max);
}
