/**
 * The query string of the site lists (`/` and `/api/sites`): `q` (part of the name), `state`, `page` and
 * `per_page`, read strictly (a bad value is a 400, not a silent default).
 *
 * @module
 */
import { SITE_STATES, type SiteState } from "../db/read_sites.ts";

/** A parsed site-list query. */
export interface SiteQuery {
  readonly q: string;
  readonly state: SiteState | null;
  /** 1-based. */
  readonly page: number;
  readonly perPage: number;
}

/** Sites per page unless `per_page` says otherwise, and the most it may say. */
export const PER_PAGE = { default: 50, max: 500 } as const;

/**
 * Reads `q`, `state`, `page` and `per_page`. Throws `RangeError` with the parameter and value for a bad one.
 *
 * @example
 * ```ts
 * parseSiteQuery(new URLSearchParams("q=shop&state=down")); // { q: "shop", state: "down", page: 1, perPage: 50 }
 * ```
 */
export function parseSiteQuery(params: URLSearchParams): SiteQuery {
  const q = (textParameter(params, "q") ?? "").trim();
  const stateText = params.get("state") ?? "";
  if (stateText !== "" && !(SITE_STATES as readonly string[]).includes(stateText)) {
    throw new RangeError(
      `Cannot read parameter 'state': expected one of ${SITE_STATES.join(", ")}: got '${stateText}'`,
    );
  }
  return {
    q,
    state: stateText === "" ? null : stateText as SiteState,
    page: whole(params, "page", 1, 1_000_000),
    perPage: whole(params, "per_page", PER_PAGE.default, PER_PAGE.max),
  };
}

/**
 * A text parameter, or null when absent. Throws `RangeError` for one holding NUL, which PostgreSQL text
 * cannot hold (the query would fail with SQLSTATE 22021): it can match nothing, and is a bad request.
 *
 * @example
 * ```ts
 * textParameter(new URLSearchParams("site=shop"), "site"); // "shop"
 * ```
 */
export function textParameter(params: URLSearchParams, name: string): string | null {
  const text = params.get(name);
  if (text?.includes("\0")) {
    throw new RangeError(`Cannot read parameter '${name}': expected text without NUL characters (%00)`);
  }
  return text;
}

function whole(params: URLSearchParams, name: string, fallback: number, max: number): number {
  const text = params.get(name);
  if (text === null || text === "") return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new RangeError(
      `Cannot read parameter '${name}': expected a whole number from 1 to ${max}: got '${text}'`,
    );
  }
  return value;
}

/** The query string (with `?`, or empty) of `query` at `page`, leaving out defaults. */
export function sitesQueryString(query: SiteQuery, page: number): string {
  const params = new URLSearchParams();
  if (query.q !== "") params.set("q", query.q);
  if (query.state !== null) params.set("state", query.state);
  if (page !== 1) params.set("page", String(page));
  if (query.perPage !== PER_PAGE.default) params.set("per_page", String(query.perPage));
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}
