/**
 * Loads sites.toml into validated, frozen {@linkcode Site} values: defaults applied, unknown keys
 * rejected, regexes compiled and cross-field rules checked, with errors naming the file, line and key.
 * This module holds the file's shape, the site table and the rules across keys; each option key is read by
 * `_config_options.ts`, the URL and headers (with `${NAME}` references) by `_config_request.ts`.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import { ConfigError } from "../args.ts";
import { deadline, isTimeout } from "../async.ts";
import { formatDuration } from "../duration.ts";
import { MAX_NAME_LENGTH } from "../message.ts";
import type { Site } from "./site.ts";
import { lineOf, locateKeys } from "./_toml_lines.ts";
import { BODY_FRAMING_HEADER } from "./_fetch_limits.ts";
import { type Fail, isTable, show, type Table } from "./_config_errors.ts";
import { OPTION_KEYS, type Options, readOptions, SITE_KEYS } from "./_config_options.ts";
import { type Env, hideUserinfo, mergeHeaders, readUrl } from "./_config_request.ts";

export { hideUserinfo };

const DEFAULT_INTERVAL_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_BODY_BYTES = 1_048_576;
const NAME_EXPECTED = `a string of 1 to ${MAX_NAME_LENGTH} characters without control characters`;
const CONTROL = /\p{Cc}/u;
// Format characters (zero-width spaces and joiners, bidi marks and controls) and the line and paragraph
// separators: allowed in results (the read side isolates them), refused in the names of the agent's own sites.
const INVISIBLE = /[\p{Cf}\u2028\u2029]/u;

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
      ? nameProblem(name) ?? lookalikeProblem(name)
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
    const regex = merged.regex ?? null;
    const maxBodyBytes = merged.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    // No body is read to match a pattern against: the site would be down on every probe, whatever it answers.
    const regexKey = `key 'regex'${from("regex")} must not be set with`;
    if (regex !== null && method === "HEAD") {
      failCross(at("regex", "method"), `${regexKey} method "HEAD": a HEAD response has no body to match`);
    }
    if (regex !== null && maxBodyBytes === 0) {
      failCross(at("regex", "max_body_bytes"), `${regexKey} max_body_bytes = 0: no byte of the body is read`);
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
      regex,
      followRedirects: merged.followRedirects ?? true,
      maxBodyBytes,
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
 * @param signal Stops the read (the program's shutdown: SIGINT or SIGTERM while a FIFO waits for a writer).
 * @returns The sites, frozen, every default applied.
 * @throws {ConfigError} If the file cannot be read, is not UTF-8 or is not a valid config.
 */
export async function loadSites(path: string, env: Env = {}, signal?: AbortSignal): Promise<readonly Site[]> {
  let text: string;
  try {
    const bytes = await deadline(
      readSitesFile(path, MAX_FILE_BYTES),
      READ_TIMEOUT_MS,
      signal ? { signal } : {},
    );
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    const reason = error instanceof TypeError
      ? "the file is not valid UTF-8"
      : isTimeout(error)
      ? `it did not open and end within ${READ_TIMEOUT_MS / 1000} s (a FIFO that nothing writes to?)`
      : signal?.aborted
      ? "stopped by a signal before it was read"
      : String(error instanceof Error ? error.message : error).replace(/: (stat|open|read) '.*'$/, "");
    throw new ConfigError(`${path}: Cannot read file: ${reason}`, { cause: error });
  }
  return parseSites(text, path, env);
}

/** The largest sites file read: 100,000 sites take about 10 MB. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** How long reading the sites file may take: a FIFO's open waits for a writer, and a pipe for its end. */
const READ_TIMEOUT_MS = 10_000;

/**
 * The bytes of the file at `path`, at most `limit` of them: a device such as /dev/zero never ends. A pipe or
 * FIFO is read too (`--sites <(envsubst < sites.tmpl)`, `/dev/stdin`); the caller bounds how long it waits.
 */
async function readSitesFile(path: string, limit: number): Promise<Uint8Array> {
  if ((await Deno.stat(path)).isDirectory) throw new Error("it is a directory");
  using file = await Deno.open(path);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(1024 * 1024);
  for (let read = await file.read(buffer); read !== null; read = await file.read(buffer)) {
    total += read;
    if (total > limit) throw new Error(`it is over ${limit / 1024 / 1024} MiB, the most a sites file may be`);
    chunks.push(buffer.slice(0, read));
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
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

/**
 * What makes a site's name look like another, or change the text around it, as the detail of an error, or
 * null: an invisible character, or white space at either end.
 */
function lookalikeProblem(name: string): string | null {
  const invisible = INVISIBLE.exec(name)?.[0];
  if (invisible !== undefined) {
    const code = invisible.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return `must not hold U+${code}: invisible characters (zero-width, bidi controls, line separators) make a ` +
      "name look like another one, or show text around it reversed";
  }
  return name.trim() === name ? null : `must not start or end with white space: got ${show(name)}`;
}

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
