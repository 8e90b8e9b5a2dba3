/**
 * The request parts of a site's config: its URL and headers, with `${NAME}` references replaced from the
 * environment, checked against what fetch sends and the sink stores. Private to `config.ts`.
 *
 * @module
 */
import { MAX_URL_LENGTH } from "../message.ts";
import { headerValueProblem, IGNORED_HEADERS, isBadPort } from "./_fetch_limits.ts";
import { type Fail, isTable, kind, type Must, show } from "./_config_errors.ts";

const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Where `${NAME}` references are looked up. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Validates a site's `url` after substitution; returns it normalised (`URL.href`). */
export function readUrl(value: unknown, fail: Fail, env: Env): string {
  const failUrl = (detail: string) => fail(["url"], `key 'url' ${detail}`);
  const parts = typeof value === "string" ? referenceParts(value) : [];
  const text = typeof value === "string"
    ? substitute(value, env, failUrl, (name, found, index) => {
      // A value in the user name or password that ends the host part would move the rest of it into the path:
      // the request would go elsewhere, and the secret would be published as part of the URL. (An `@` is safe
      // there: the last one before the host ends the user part, and the others are encoded.)
      const ender = parts[index] === "userinfo" ? /[/?#\\]/.exec(found)?.[0] : undefined;
      if (ender !== undefined) {
        failUrl(
          `puts environment variable '${name}' in the URL's user name or password, and its value holds ` +
            `'${ender}', which would end the host part and move the rest into the path (value not shown): ` +
            `percent-encode it (${encodeURIComponent(ender)})`,
        );
      }
      // An `@` in a value in the host would make what comes before it a user part, and send the request to
      // what follows it.
      if (parts[index] === "host" && found.includes("@")) {
        failUrl(
          `puts environment variable '${name}' in the URL's host, and its value holds '@', which would send ` +
            "the request to the host after it (value not shown)",
        );
      }
    })
    : value;
  // An error shows the URL as written, its user name and password hidden: a value from the environment may be
  // a secret, and so may what is written there.
  const url = typeof text === "string" && URL.canParse(text) ? new URL(text) : null;
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
    const shown = typeof value === "string" ? show(hideWrittenUserinfo(value)) : show(value);
    fail(["url"], `key 'url' must be an absolute http or https URL: got ${shown}`);
  }
  if (isBadPort(url.port)) {
    fail(
      ["url"],
      `key 'url' must not use port ${url.port}: fetch refuses it (a "bad port" in the Fetch standard)`,
    );
  }
  const published = hideUserinfo(url.href);
  if (published.length > MAX_URL_LENGTH) {
    fail(
      ["url"],
      `key 'url' must be at most ${MAX_URL_LENGTH} UTF-16 code units long as published (the sink's limit): ` +
        `got ${published.length}`,
    );
  }
  return url.href;
}

/** Validates the `headers` table of `[defaults]` or a `[[site]]`, values substituted. */
export function readHeaders(value: unknown, must: Must, fail: Fail, env: Env): Record<string, string> {
  if (!isTable(value)) return must("a table of header names to strings");
  const seen = new Map<string, string>();
  const headers: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    if (!HTTP_TOKEN.test(name)) {
      must(`a table with HTTP token names such as "X-Api-Key"`, show(name), ["headers", name]);
    }
    const ignored = IGNORED_HEADERS.get(name.toLowerCase());
    if (ignored !== undefined) fail(["headers", name], `key 'headers' must not set "${name}": ${ignored}`);
    const other = seen.get(name.toLowerCase());
    if (other !== undefined) {
      must("a table with each header once", `"${other}" and "${name}"`, ["headers", name]);
    }
    seen.set(name.toLowerCase(), name);
    // Values are not quoted back: headers may hold secrets.
    if (typeof raw !== "string") {
      must("a table of header names to strings", `${kind(raw)} for "${name}"`, ["headers", name]);
    }
    const text = substitute(raw, env, (detail) => fail(["headers", name], `key 'headers.${name}' ${detail}`));
    headers[name] = text;
    if (/[\r\n\0]/.test(text)) {
      must("a table of values without CR, LF or NUL", `one in "${name}" (value not shown)`, [
        "headers",
        name,
      ]);
    }
    const problem = headerValueProblem(text);
    if (problem === "control") {
      must(
        "a table of values without control characters other than tab, which fetch refuses",
        `one in "${name}" (value not shown)`,
        ["headers", name],
      );
    }
    if (problem === "not a ByteString") {
      must(
        "a table of values fetch can send, ByteStrings (characters up to U+00FF)",
        `a character over U+00FF in "${name}" (value not shown)`,
        ["headers", name],
      );
    }
  }
  return headers;
}

/**
 * Replaces each `${NAME}` in `text` with the environment variable NAME; `$${` stands for a literal `${`.
 * `fail` gets the detail of a reference that is malformed or names a variable that is not set; `check` sees
 * each value found, with the reference's number (from 0, in the order of the text).
 */
function substitute(
  text: string,
  env: Env,
  fail: (detail: string) => never,
  check?: (name: string, value: string, index: number) => void,
): string {
  let index = 0;
  return text.replace(REFERENCE, (match, name: string | undefined, close: string) => {
    if (match === "$${") return "${";
    if (close !== "}" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name ?? "")) {
      fail(`has a malformed reference ${show(match)}: expected \${NAME} with letters, digits and '_'`);
    }
    const found = env[name!];
    if (found === undefined) fail(`uses environment variable '${name}', which is not set`);
    check?.(name!, found, index++);
    return found;
  });
}

const REFERENCE = /\$\$\{|\$\{([^}]*)(\}?)/g;

/**
 * Which part of the URL each `${NAME}` of `template` is in, by parsing the template with each reference
 * replaced by a marker, as the URL parser itself will split it: `"userinfo"`, `"host"` or `"other"`. The
 * markers are letters, or digits where a reference stands for a port; empty when neither parses (a reference
 * that holds the scheme or the whole URL decides the parts itself).
 */
function referenceParts(template: string): ("userinfo" | "host" | "other")[] {
  for (const markerOf of [(i: number) => `zq${i}envref`, (i: number) => `9${i}9`]) {
    const markers: string[] = [];
    const marked = template.replace(REFERENCE, (match) => {
      if (match === "$${") return match;
      markers.push(markerOf(markers.length));
      return markers.at(-1)!;
    });
    if (!URL.canParse(marked)) continue;
    const url = new URL(marked);
    const userinfo = `${url.username}:${url.password}`.toLowerCase();
    const host = url.hostname.toLowerCase();
    return markers.map((marker) =>
      userinfo.includes(marker) ? "userinfo" : host.includes(marker) ? "host" : "other"
    );
  }
  return [];
}

/**
 * A URL as written with what may be a user name and password replaced by `***`, for error messages: whatever
 * stands between the scheme's `:` (and any slashes) and the last `@` before the host ends.
 */
function hideWrittenUserinfo(text: string): string {
  return text.replace(/^(\s*[A-Za-z][A-Za-z0-9+.-]*:[\s/\\]*)[^/?#\\]*@/, "$1***@");
}

/**
 * The URL as it may be shown and published: user name and password replaced by one `***`, e.g.
 * `https://***@host/path`. The full URL is only used for the request itself.
 */
export function hideUserinfo(href: string): string {
  const url = new URL(href);
  if (url.username === "" && url.password === "") return href;
  return `${url.protocol}//***@${url.host}${url.pathname}${url.search}${url.hash}`;
}

/** Site headers replace default headers of the same name in any letter case. */
export function mergeHeaders(
  base: Record<string, string> = {},
  own: Record<string, string> = {},
): Record<string, string> {
  const ownNames = new Set(Object.keys(own).map((name) => name.toLowerCase()));
  const kept = Object.entries(base).filter(([name]) => !ownNames.has(name.toLowerCase()));
  return { ...Object.fromEntries(kept), ...own };
}
