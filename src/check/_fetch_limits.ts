/**
 * What Deno's `fetch` (2.9) refuses or silently drops in a request, so that `config.ts` can refuse it at load
 * instead of every probe of the site failing (or measuring something else). Checked against a loopback
 * `Deno.serve` over HTTP/1.1 and HTTP/2. Private to `config.ts`.
 *
 * @module
 */

/** Methods fetch throws "Method is forbidden" for, in any letter case (Fetch standard). */
export const FORBIDDEN_METHODS: readonly string[] = ["CONNECT", "TRACE", "TRACK"];

/** Ports fetch throws "Requests to port N are blocked" for: the "bad ports" of the Fetch standard. */
const BAD_PORTS: ReadonlySet<number> = new Set([
  0,
  1,
  7,
  9,
  11,
  13,
  15,
  17,
  19,
  20,
  21,
  22,
  23,
  25,
  37,
  42,
  43,
  53,
  69,
  77,
  79,
  87,
  95,
  101,
  102,
  103,
  104,
  109,
  110,
  111,
  113,
  115,
  117,
  119,
  123,
  135,
  137,
  139,
  143,
  161,
  179,
  389,
  427,
  465,
  512,
  513,
  514,
  515,
  526,
  530,
  531,
  532,
  540,
  548,
  554,
  556,
  563,
  587,
  601,
  636,
  989,
  990,
  993,
  995,
  1719,
  1720,
  1723,
  2049,
  3659,
  4045,
  4190,
  5060,
  5061,
  6000,
  6566,
  6665,
  6666,
  6667,
  6668,
  6669,
  6679,
  6697,
  10080,
]);

/** Whether fetch refuses a URL's port (`url.port`: empty for the scheme's default port). */
export function isBadPort(port: string): boolean {
  return port !== "" && BAD_PORTS.has(Number(port));
}

/**
 * Request headers fetch drops whatever the request, lower case, with why: a site that sets one would be
 * probed without it.
 */
export const IGNORED_HEADERS: ReadonlyMap<string, string> = new Map([
  ["host", "fetch ignores it and sends the host of 'url'"],
  ["content-length", "fetch ignores it and sends the length of the body"],
]);

/** Fetch drops this one from a request without a body (and on HTTP/2); on HTTP/1.1 with a body it is sent. */
export const BODY_FRAMING_HEADER = "transfer-encoding";

/**
 * Why fetch refuses a header value that has no CR, LF or NUL (`config.ts` reports those itself), or null:
 * Deno's `Headers` throws "is not a valid ByteString" for a character over U+00FF, and its HTTP client
 * "failed to parse header value" for a control character other than tab.
 */
export function headerValueProblem(value: string): "control" | "not a ByteString" | null {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code > 0xff) return "not a ByteString";
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return "control";
  }
  return null;
}
