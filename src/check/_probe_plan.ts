/**
 * What a probe of a site needs that does not change between its probes (parsed URL, request headers),
 * worked out on the site's first probe and kept while the site lives. Private to `probe.ts`.
 *
 * @module
 */
import type { Site } from "./site.ts";
import { VERSION } from "../version.ts";

/** What a probe of a site needs that does not change between its probes, worked out once. */
export interface Plan {
  /** The site's URL. URL objects are mutable: nothing may change it. */
  readonly url: URL;
  /** Its text: fetch takes a string for less work than a URL object. */
  readonly href: string;
  /** Whether a certificate expiry applies (https). */
  readonly https: boolean;
  /**
   * The request headers (the site's, and the default User-Agent unless it sets one) as a frozen record, or
   * null when they cannot be built (a value fetch rejects): then every probe builds them, and fails.
   */
  readonly headers: Readonly<Record<string, string>> | null;
}

// URL parsing, header building and the certificate lookup showed up in profiles at thousands of probes a
// second: they are done once per site.
const PLANS = new WeakMap<Site, Plan>();

/** The plan of `site`, made on its first probe. */
export function planOf(site: Site): Plan {
  let plan = PLANS.get(site);
  if (plan === undefined) {
    const url = new URL(site.url);
    let headers: Readonly<Record<string, string>> | null = DEFAULT_HEADERS;
    if (Object.keys(site.headers).length > 0) {
      try {
        headers = Object.freeze(Object.fromEntries(requestHeaders(site)));
      } catch {
        headers = null;
      }
    }
    PLANS.set(site, plan = { url, href: url.href, https: url.protocol === "https:", headers });
  }
  return plan;
}

/** The headers of a site that sets none. */
const DEFAULT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "user-agent": `monitor/${VERSION}`,
});

/** The headers of a site's first request; throws a TypeError for a value fetch would reject. */
export function requestHeaders(site: Site): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(site.headers)) headers.set(name, value);
  if (!headers.has("user-agent")) headers.set("user-agent", `monitor/${VERSION}`);
  return headers;
}
