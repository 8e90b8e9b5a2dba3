/**
 * The option keys `[defaults]` and a `[[site]]` share, each read and validated on its own: durations,
 * method, headers, body, expected statuses, regex, redirects and the body limit. Rules across keys, and the
 * defaults of absent keys, are `config.ts`'s. Private to `config.ts`.
 *
 * @module
 */
import { parseDuration } from "../duration.ts";
import { MAX_URL_LENGTH } from "../message.ts";
import { compilePattern } from "./regex.ts";
import type { StatusRange } from "./site.ts";
import { FORBIDDEN_METHODS } from "./_fetch_limits.ts";
import { type Fail, kind, type Must, show, type Table } from "./_config_errors.ts";
import { type Env, readHeaders } from "./_config_request.ts";

/** The keys `[defaults]` allows. */
export const OPTION_KEYS: readonly string[] =
  "interval timeout method headers body expect_status regex follow_redirects max_body_bytes".split(" ");
/** The keys a `[[site]]` allows. */
export const SITE_KEYS: readonly string[] = ["name", "url", ...OPTION_KEYS];
const MAX_INTERVAL_MS = 86_400_000; // timers overflow past 2^31 ms (~24.8 days); a day is plenty
const MAX_BODY_BYTES = 67_108_864;
// decodeCheck() bounds the published pattern by the URL limit; the sink dead-letters a longer one.
const MAX_REGEX_LENGTH = MAX_URL_LENGTH;
const STATUS = /^(\d{3})(?:-(\d{3}))?$/;

/** What `[defaults]` or one `[[site]]` sets, already validated; absent keys stay absent. */
export interface Options {
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

/** Validates the option keys of `[defaults]` or a `[[site]]`, in file order; `name` and `url` are skipped. */
export function readOptions(table: Table, allowed: readonly string[], fail: Fail, env: Env): Options {
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
        } catch (error) {
          // A duration too large to count is over the limit below; any other error is reported as not one.
          if (error instanceof RangeError) ms = Infinity;
        }
        if (Number.isNaN(ms)) must(`a duration such as "30s", "1m" or "500ms"`);
        if (key === "interval" && ms < 1000) must(`at least "1s"`);
        if (ms > MAX_INTERVAL_MS) must(`at most "24h"`);
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
