/**
 * The paths of a site's page, JSON and badges, and the way back from a request to the site's name.
 *
 * A name goes in a path segment, percent-encoded, except `.` and `..`: URL parsers (browsers, and the
 * server's own `new URL()`) remove those segments as they do in file paths, even percent-encoded, so
 * `/sites/..` and `/sites/%2E%2E` both mean `/`. Those two names go in the query instead, after an empty
 * segment: `/sites/?name=..`, `/api/sites/?name=..`, `/badge/.svg?name=..` and
 * `/badge//uptime.svg?name=..&period=30d`. A site name is never empty, so an empty segment cannot be a name
 * and the two forms cannot be confused; the query form works for every name.
 *
 * @module
 */

/** The names a path segment cannot carry. */
function needsQuery(name: string): boolean {
  return name === "." || name === "..";
}

function inQuery(name: string): string {
  return new URLSearchParams({ name }).toString();
}

/**
 * The path of a site's page.
 *
 * @example
 * ```ts
 * sitePath("shop/eu"); // "/sites/shop%2Feu"
 * sitePath(".."); // "/sites/?name=.."
 * ```
 */
export function sitePath(name: string): string {
  return needsQuery(name) ? `/sites/?${inQuery(name)}` : `/sites/${encodeURIComponent(name)}`;
}

/** The path of a site's JSON: `/api` and {@linkcode sitePath}. */
export function siteApiPath(name: string): string {
  return `/api${sitePath(name)}`;
}

/** The path of a site's state badge. */
export function stateBadgePath(name: string): string {
  return needsQuery(name) ? `/badge/.svg?${inQuery(name)}` : `/badge/${encodeURIComponent(name)}.svg`;
}

/** The path of a site's uptime badge over `period` (such as `30d`). */
export function uptimeBadgePath(name: string, period: string): string {
  const query = new URLSearchParams({ period }).toString();
  return needsQuery(name)
    ? `/badge//uptime.svg?${inQuery(name)}&${query}`
    : `/badge/${encodeURIComponent(name)}/uptime.svg?${query}`;
}

/**
 * The site name a request names: its path segment (still percent-encoded) decoded, or, when the segment is
 * empty, the `name` query parameter. Null when there is none, the encoding is not valid, or the name holds
 * NUL, which no stored name can (PostgreSQL text cannot hold it): such a request is a 404, not a query.
 *
 * @example
 * ```ts
 * nameOf("shop%2Feu", new URLSearchParams()); // "shop/eu"
 * nameOf("", new URLSearchParams("name=..")); // ".."
 * nameOf("%00", new URLSearchParams()); // null
 * ```
 */
export function nameOf(segment: string, params: URLSearchParams): string | null {
  let name: string | null;
  try {
    name = segment === "" ? params.get("name") : decodeURIComponent(segment);
  } catch {
    return null; // not valid percent-encoding
  }
  return name === null || name === "" || name.includes("\0") ? null : name;
}
