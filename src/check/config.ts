/**
 * Loads sites.toml into validated, frozen {@linkcode Site} values: defaults applied, unknown keys
 * rejected, regexes compiled and cross-field rules checked, with errors naming the file, line and key.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import { ConfigError } from "../args.ts";
import { formatDuration, parseDuration } from "../duration.ts";
import { MAX_NAME_LENGTH, MAX_URL_LENGTH } from "../message.ts";
import { compilePattern } from "./regex.ts";
import type { Site, StatusRange } from "./site.ts";
import { lineOf, locateKeys } from "./_toml_lines.ts";
import {
  BODY_FRAMING_HEADER,
  FORBIDDEN_METHODS,
  headerValueProblem,
  IGNORED_HEADERS,
  isBadPort,
} from "./_fetch_limits.ts";

const OPTION_KEYS = "interval timeout method headers body expect_status regex follow_redirects max_body_bytes"
  .split(" ");
const SITE_KEYS = ["name", "url", ...OPTION_KEYS];
const DEFAULT_INTERVAL_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_INTERVAL_MS = 86_400_000; // timers overflow past 2^31 ms (~24.8 days); a day is plenty
const DEFAULT_MAX_BODY_BYTES = 1_048_576;
const MAX_BODY_BYTES = 67_108_864;
// decodeCheck() bounds the published pattern by the URL limit; the sink dead-letters a longer one.
const MAX_REGEX_LENGTH = MAX_URL_LENGTH;
const NAME_EXPECTED = `a string of 1 to ${MAX_NAME_LENGTH} characters without control characters`;
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CONTROL = /\p{Cc}/u;
const STATUS = /^(\d{3})(?:-(\d{3}))?$/;

/** What `[defaults]` or one `[[site]]` sets, already validated; absent keys stay absent. */
interface Options {
  intervalMs?: number;
  timeoutMs?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string | null;
  expectStatus?: StatusRange[];
  regex?: RegExp | null;
  followRedirects?: boolean;
  maxBodyBytes?: number;
}

/** Throws a ConfigError for a key path (relative to the table being read) with a detail. */
type Fail = (path: readonly string[], detail: string) => never;
type Table = Record<string, unknown>;

/**
 * Parses the text of a sites.toml into validated sites, in file order. Pure: reads nothing.
 *
 * @example
 * ```ts
 * const sites = parseSites('[[site]]\nname = "home"\nurl = "http://127.0.0.1:8080/"\n', "sites.toml");
 * sites[0]?.intervalMs; // 60000
 * ```
 *
 * @param text The TOML text.
 * @param file The path the text came from, used as given in error messages.
 * @param env Where `${NAME}` references in URLs and header values are looked up; default none set.
 * @returns The sites, frozen, every default applied.
 * @throws {ConfigError} If the text is not TOML or does not describe at least one valid site.
 */
export function parseSites(text: string, file: string, env: Env = {}): readonly Site[] {
  let root: Table;
  try {
    root = parse(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = error.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "");
    throw new ConfigError(`${file}:${error.line}:${error.column}: Cannot parse TOML: ${reason}`, {
      cause: error,
    });
  }
  const lines = locateKeys(text);
  const failer = (base: readonly string[], label: string): Fail => (path, detail) => {
    throw new ConfigError(`${file}:${lineOf(lines, [...base, ...path])}: Cannot load ${label}: ${detail}`);
  };
  const failTop: Fail = failer([], "config");
  for (const key of Object.keys(root)) {
    if (key !== "defaults" && key !== "site") {
      failTop([key], `key '${key}' is unknown: allowed keys are 'defaults' and 'site'`);
    }
  }
  if (root.defaults !== undefined && !isTable(root.defaults)) {
    failTop(["defaults"], `key 'defaults' must be a table written [defaults]: got ${show(root.defaults)}`);
  }
  const tables = root.site ?? [];
  if (!Array.isArray(tables) || !tables.every(isTable)) {
    failTop(["site"], `key 'site' must be an array of tables written [[site]]: got ${show(tables)}`);
  }
  if (tables.length === 0) failTop([], "the file contains no [[site]] entries: expected at least one");
  const defaultsTable = isTable(root.defaults) ? root.defaults : {};
  const defaults = readOptions(defaultsTable, OPTION_KEYS, failer(["defaults"], "[defaults]"), env);

  const firstLine = new Map<string, number>();
  return Object.freeze(tables.map((table, index) => {
    const base = ["site", String(index)];
    const name = table.name;
    const problem = typeof name === "string"
      ? nameProblem(name)
      : `must be ${NAME_EXPECTED}: got ${show(name)}`;
    const label = problem === null ? `site '${name}'` : `site #${index + 1}`;
    const fail: Fail = failer(base, label);
    if (name === undefined) fail([], `key 'name' is missing: expected ${NAME_EXPECTED}`);
    if (typeof name !== "string" || problem !== null) fail(["name"], `key 'name' ${problem}`);
    const first = firstLine.get(name);
    if (first !== undefined) {
      fail(["name"], `key 'name' must be unique: '${name}' is already used on line ${first}`);
    }
    firstLine.set(name, lineOf(lines, [...base, "name"]));

    const own = readOptions(table, SITE_KEYS, fail, env);
    if (table.url === undefined) fail([], "key 'url' is missing: expected an absolute http or https URL");
    const url = readUrl(table.url, fail, env);
    const merged: Options = { ...defaults, ...own, headers: mergeHeaders(defaults.headers, own.headers) };
    // A cross-field error points at the site's own key, or at [defaults] when both values come from there.
    const failCross: Fail = failer([], label);
    const at = (...keys: string[]): string[] => {
      const key = keys.find((k) => table[k] !== undefined);
      return key === undefined ? ["defaults", keys[0] ?? ""] : [...base, key];
    };
    const from = (key: string): string => table[key] === undefined ? " (from [defaults])" : "";
    const intervalMs = merged.intervalMs ?? DEFAULT_INTERVAL_MS;
    const timeoutMs = merged.timeoutMs ?? Math.min(DEFAULT_TIMEOUT_MS, intervalMs);
    if (timeoutMs > intervalMs) {
      failCross(
        at("timeout", "interval"),
        `key 'timeout'${from("timeout")} must not be longer than the interval ` +
          `"${formatDuration(intervalMs)}": got "${formatDuration(timeoutMs)}"`,
      );
    }
    const method = merged.method ?? "GET";
    const body = merged.body ?? null;
    if (body !== null && (method === "GET" || method === "HEAD")) {
      const detail = `must not be set with method "${method}": a GET or HEAD request has no body`;
      failCross(at("body", "method"), `key 'body'${from("body")} ${detail}`);
    }
    const headers = merged.headers ?? {};
    const framing = Object.keys(headers).find((header) => header.toLowerCase() === BODY_FRAMING_HEADER);
    if (framing !== undefined && body === null) {
      const isOwn = own.headers?.[framing] !== undefined;
      failCross(
        isOwn ? [...base, "headers", framing] : ["defaults", "headers", framing],
        `key 'headers'${isOwn ? "" : " (from [defaults])"} must not set "${framing}" without a body: ` +
          "fetch drops it from a request without one",
      );
    }
    return Object.freeze<Site>({
      name,
      url,
      shownUrl: hideUserinfo(url),
      intervalMs,
      timeoutMs,
      method,
      headers: Object.freeze(headers),
      body,
      expectStatus: Object.freeze(merged.expectStatus ?? [Object.freeze({ min: 200, max: 399 })]),
      regex: merged.regex ?? null,
      followRedirects: merged.followRedirects ?? true,
      maxBodyBytes: merged.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    });
  }));
}

/**
 * Reads and parses a sites.toml file (see {@linkcode parseSites}).
 *
 * @example
 * ```ts
 * const sites = await loadSites("sites.toml");
 * ```
 *
 * @param path The file's path, used as given in error messages.
 * @param env Where `${NAME}` references are looked up (the program passes its environment).
 * @returns The sites, frozen, every default applied.
 * @throws {ConfigError} If the file cannot be read, is not UTF-8 or is not a valid config.
 */
export async function loadSites(path: string, env: Env = {}): Promise<readonly Site[]> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(path));
  } catch (error) {
    const reason = error instanceof TypeError
      ? "the file is not valid UTF-8"
      : String(error instanceof Error ? error.message : error).replace(/: readfile '.*'$/, "");
    throw new ConfigError(`${path}: Cannot read file: ${reason}`, { cause: error });
  }
  return parseSites(text, path, env);
}

/**
 * Describes resolved sites for people, e.g. for `monitor check --dry-run`. Header values are shown as
 * `***` and credentials in a URL as `***@` as they may hold secrets; a body is shown by its size only.
 *
 * @example
 * ```ts
 * console.log(formatSites(await loadSites("sites.toml")));
 * ```
 *
 * @param sites The sites, as {@linkcode parseSites} returns them.
 * @returns One block per site, separated by blank lines, ending with a newline.
 */
export function formatSites(sites: readonly Site[]): string {
  return sites.map((site) => {
    const fields: [string, string][] = [
      ["url", site.shownUrl],
      ["interval", formatDuration(site.intervalMs)],
      ["timeout", formatDuration(site.timeoutMs)],
      ["method", site.method],
      [
        "expect status",
        site.expectStatus.map((r) => r.min === r.max ? `${r.min}` : `${r.min}-${r.max}`).join(", "),
      ],
      ["regex", site.regex === null ? "none" : String(site.regex)],
      ["follow redirects", site.followRedirects ? "yes" : "no"],
      ["max body", `${site.maxBodyBytes} bytes`],
      ["headers", Object.keys(site.headers).map((name) => `${name}: ***`).join(", ") || "none"],
      ["body", site.body === null ? "none" : `${new TextEncoder().encode(site.body).length} bytes`],
    ];
    const rows = fields.map(([key, value]) => `  ${`${key}:`.padEnd(18)}${value}\n`);
    return `site '${site.name}'\n${rows.join("")}`;
  }).join("\n");
}

/** Validates the option keys of `[defaults]` or a `[[site]]`, in file order; `name` and `url` are skipped. */
function readOptions(table: Table, allowed: readonly string[], fail: Fail, env: Env): Options {
  const out: Options = {};
  for (const [key, value] of Object.entries(table)) {
    const must: Must = (expected, got = show(value), path = [key]) =>
      fail(path, `key '${key}' must be ${expected}: got ${got}`);
    if (!allowed.includes(key)) {
      const what = SITE_KEYS.includes(key) ? "is only allowed in [[site]]" : "is unknown";
      fail([key], `key '${key}' ${what}: allowed keys are ${allowed.map((k) => `'${k}'`).join(", ")}`);
    }
    switch (key) {
      case "interval":
      case "timeout": {
        let ms = NaN;
        try {
          if (typeof value === "string") ms = parseDuration(value);
        } catch { /* reported below */ }
        if (Number.isNaN(ms)) must(`a duration such as "30s", "1m" or "500ms"`);
        if (key === "interval" && ms < 1000) must(`at least "1s"`);
        if (key === "interval" && ms > MAX_INTERVAL_MS) must(`at most "24h"`);
        if (key === "timeout" && ms <= 0) must(`more than "0s"`);
        out[key === "interval" ? "intervalMs" : "timeoutMs"] = ms;
        break;
      }
      case "method":
        if (typeof value !== "string" || !/^[A-Za-z]+$/.test(value)) {
          must(`an HTTP method of letters such as "GET"`);
        }
        if (FORBIDDEN_METHODS.includes(value.toUpperCase())) {
          must(`a method fetch can send, which excludes ${FORBIDDEN_METHODS.join(", ")}`);
        }
        out.method = value.toUpperCase();
        break;
      case "headers":
        out.headers = readHeaders(value, must, fail, env);
        break;
      case "body":
        if (typeof value !== "string") must("a string", kind(value));
        out.body = value === "" ? null : value;
        break;
      case "expect_status":
        out.expectStatus = readStatuses(value, must);
        break;
      case "regex":
        if (typeof value !== "string") must("a JavaScript regular expression as a string");
        // The sink refuses text with NUL (PostgreSQL cannot store it); the escape \x00 matches one instead.
        if (value.includes("\0")) must("a pattern without a NUL character (match one with \\x00)");
        try {
          out.regex = value === "" ? null : compilePattern(value);
        } catch (error) {
          if (error instanceof RangeError) fail([key], `key 'regex' ${show(value)}: ${error.message}`);
          must(
            "a valid JavaScript regular expression",
            `${show(value)} (${String(error).replace(/^.*: /, "")})`,
          );
        }
        // Published as its source, where '/' and line breaks are escaped: what the sink measures.
        if (out.regex !== null && out.regex.source.length > MAX_REGEX_LENGTH) {
          const length = out.regex.source.length;
          must(
            `at most ${MAX_REGEX_LENGTH} UTF-16 code units long as published (the sink's limit)`,
            length === value.length ? `${length}` : `${length} (${value.length} as written, before escaping)`,
          );
        }
        break;
      case "follow_redirects":
        if (typeof value !== "boolean") must("true or false");
        out.followRedirects = value;
        break;
      case "max_body_bytes":
        if (!Number.isInteger(value) || Number(value) < 0 || Number(value) > MAX_BODY_BYTES) {
          must(`an integer from 0 to ${MAX_BODY_BYTES}`);
        }
        out.maxBodyBytes = Number(value);
    }
  }
  return out;
}

function readUrl(value: unknown, fail: Fail, env: Env): string {
  const text = typeof value === "string"
    ? substitute(value, env, (detail) => fail(["url"], `key 'url' ${detail}`))
    : value;
  // An error shows the URL as written: a value from the environment may be a secret.
  const url = typeof text === "string" && URL.canParse(text) ? new URL(text) : null;
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
    fail(["url"], `key 'url' must be an absolute http or https URL: got ${show(value)}`);
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

type Must = (expected: string, got?: string, path?: string[]) => never;

/**
 * What is wrong with a name in results (a site's, the agent's, the region), as the detail of an error, or
 * null: the sink's rules for names (`decodeCheck()`), the length counted as it counts it, in UTF-16 code units.
 */
export function nameProblem(name: string): string | null {
  if (name.length === 0 || CONTROL.test(name)) return `must be ${NAME_EXPECTED}: got ${show(name)}`;
  if (!name.isWellFormed()) return `must be valid Unicode: got an unpaired surrogate in ${show(name)}`;
  if (name.length > MAX_NAME_LENGTH) {
    return `must be at most ${MAX_NAME_LENGTH} UTF-16 code units long (the sink's limit; a character such as ` +
      `an emoji counts 2): got ${name.length}`;
  }
  return null;
}

function readHeaders(value: unknown, must: Must, fail: Fail, env: Env): Record<string, string> {
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

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Replaces each `${NAME}` in `text` with the environment variable NAME; `$${` stands for a literal `${`.
 * `fail` gets the detail of a reference that is malformed or names a variable that is not set.
 */
function substitute(text: string, env: Env, fail: (detail: string) => never): string {
  return text.replace(/\$\$\{|\$\{([^}]*)(\}?)/g, (match, name: string | undefined, close: string) => {
    if (match === "$${") return "${";
    if (close !== "}" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name ?? "")) {
      fail(`has a malformed reference ${show(match)}: expected \${NAME} with letters, digits and '_'`);
    }
    const found = env[name!];
    if (found === undefined) fail(`uses environment variable '${name}', which is not set`);
    return found;
  });
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
function mergeHeaders(
  base: Record<string, string> = {},
  own: Record<string, string> = {},
): Record<string, string> {
  const ownNames = new Set(Object.keys(own).map((name) => name.toLowerCase()));
  const kept = Object.entries(base).filter(([name]) => !ownNames.has(name.toLowerCase()));
  return { ...Object.fromEntries(kept), ...own };
}

function readStatuses(value: unknown, must: Must): StatusRange[] {
  const expected = `a list of status codes from 100 to 599 or ranges such as [200, "300-399"]`;
  if (!Array.isArray(value)) return must(expected);
  if (value.length === 0) must(expected, "an empty list");
  return value.map((entry: unknown, index) => {
    const match = typeof entry === "string" ? STATUS.exec(entry) : null;
    const min = Number.isInteger(entry) ? Number(entry) : Number(match?.[1]);
    const max = match?.[2] === undefined ? min : Number(match[2]);
    if (!(min >= 100 && max <= 599)) must(expected, show(entry), ["expect_status", String(index)]);
    if (min > max) {
      must(`a list of ranges with the lower code first, such as "200-399"`, show(entry), [
        "expect_status",
        String(index),
      ]);
    }
    return Object.freeze({ min, max });
  });
}

function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** A value as an error message shows it: strings quoted, tables and lists by their kind. */
function show(value: unknown): string {
  if (typeof value === "string") {
    // Not cut inside a surrogate pair: the half would print as U+FFFD.
    const end = /[\uD800-\uDBFF]/.test(value[79] ?? "") ? 79 : 80;
    return JSON.stringify(value.length > 80 ? `${value.slice(0, end)}…` : value);
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  return kind(value);
}

function kind(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return "a date-time";
  if (typeof value === "object" && value !== null) return "a table";
  return typeof value === "number" ? "a number" : `a ${typeof value}`;
}
