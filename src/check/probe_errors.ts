/**
 * Classifies what `fetch` threw into a probe error kind and a short message. Deno reports network
 * failures as `TypeError: fetch failed` with the reason only in the `cause` chain, as text (hyper and
 * rustls messages, see the rules below); Node-style `code`s and Deno error class names are matched too.
 *
 * @module
 */
import type { CheckError, ErrorKind } from "../message.ts";

/** Which part of a probe failed: before the response headers arrived, or while reading the body. */
export type ProbePhase = "request" | "body";

// Order matters: a DNS failure is reported as a "Connect" error by hyper, and a TLS failure too.
const RULES: readonly { readonly kind: ErrorKind; readonly pattern: RegExp }[] = [
  {
    kind: "dns",
    pattern:
      /dns error|failed to lookup address|name or service not known|nodename nor servname|no address associated|name resolution|\benotfound\b|\beai_again\b|\bnxdomain\b/,
  },
  {
    kind: "tls",
    pattern:
      /certificate|\btls\b|\bssl\b|handshake|received corrupt message|peer is incompatible|peer misbehaved|\berr_tls_|\bcert_/,
  },
  {
    kind: "connect",
    pattern:
      /connection refused|connectionrefused|econnrefused|connection reset|connectionreset|econnreset|tcp connect error|unreachable|no route to host|closed before message completed|broken pipe|\bepipe\b|connection aborted|connectionaborted|econnaborted|error reading a body|network is down|not connected|notconnected|timed out|etimedout|address not available|requests to port \d+ are blocked/,
  },
];

/**
 * Turns an error thrown by `fetch` (or by reading a response body) into a {@linkcode CheckError}. Timeouts
 * and cancellation are not recognised here: the caller knows its own signals better than any error text.
 * The message names the host and port only, never the path, query, credentials or headers.
 *
 * @example
 * ```ts
 * const error = await fetch("http://does-not-exist.invalid/").catch((error) => error);
 * classifyFetchError(error, new URL("http://does-not-exist.invalid/"), "request");
 * // { kind: "dns", message: "Cannot resolve host 'does-not-exist.invalid': failed to lookup address information: …" }
 * ```
 */
export function classifyFetchError(error: unknown, url: URL, phase: ProbePhase): CheckError {
  const links = causeChain(error);
  const haystack = links.map((link) => `${link.name} ${link.code} ${link.message}`).join("\n").toLowerCase();
  const kind = RULES.find((rule) => rule.pattern.test(haystack))?.kind ?? "other";
  const detail = describeCause(links);
  const host = url.hostname;
  const address = `${host}:${url.port === "" ? (url.protocol === "https:" ? 443 : 80) : url.port}`;
  if (phase === "body") return { kind, message: `Reading the body from '${address}' failed: ${detail}` };
  switch (kind) {
    case "dns":
      return { kind, message: `Cannot resolve host '${host}': ${detail}` };
    case "tls":
      return { kind, message: `TLS handshake with '${address}' failed: ${detail}` };
    case "connect":
      if (/requests to port \d+ are blocked/i.test(detail)) {
        return {
          kind,
          message:
            `Cannot connect to '${address}': fetch refuses this port (a "bad port" in the Fetch standard)`,
        };
      }
      return {
        kind,
        message: `Cannot connect to '${address}': ${detail.replace(/^tcp connect error: /i, "")}`,
      };
    default:
      return { kind, message: `Request to '${address}' failed: ${detail}` };
  }
}

interface Link {
  readonly name: string;
  readonly code: string;
  readonly message: string;
}

function causeChain(error: unknown): Link[] {
  const links: Link[] = [];
  const seen = new Set<unknown>();
  let current = error;
  while (current !== undefined && current !== null && !seen.has(current) && links.length < 8) {
    seen.add(current);
    if (typeof current === "object") {
      const { name, code, message, cause } = current as Record<string, unknown>;
      links.push({ name: String(name ?? ""), code: String(code ?? ""), message: String(message ?? "") });
      current = cause;
    } else {
      links.push({ name: "", code: "", message: String(current) });
      current = undefined;
    }
  }
  return links;
}

const MAX_DETAIL_LENGTH = 200;

/**
 * The innermost useful message, stripped of hyper's "error sending request for url (…): client error
 * (Connect): " preamble and of any URL, which could carry credentials or tokens.
 */
function describeCause(links: readonly Link[]): string {
  const generic = /^(fetch failed|failed to fetch)$/i;
  const message =
    links.map((link) => link.message.trim()).filter((text) => text !== "" && !generic.test(text))
      .at(-1) ?? links[0]?.message ?? "unknown error";
  let detail = message.replace(/^fetch failed: /i, "");
  const preamble = /client error \([^)]*\):\s*/i.exec(detail);
  if (preamble) detail = detail.slice(preamble.index + preamble[0].length);
  detail = detail
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s)]*/gi, "<url>")
    .replace(/Other\(OtherError\((\w+)\)\)/g, "$1")
    .replace(/^(dns error|tcp connect error):\s*/i, "")
    .replace(/\s+/g, " ")
    .trim();
  if (detail === "") detail = "unknown error";
  if (detail.length > MAX_DETAIL_LENGTH) detail = `${detail.slice(0, MAX_DETAIL_LENGTH - 1)}…`;
  return detail.charAt(0).toLowerCase() + detail.slice(1);
}
