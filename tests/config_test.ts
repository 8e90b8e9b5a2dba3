import { deadline } from "../src/async.ts";
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { ConfigError } from "../src/args.ts";
import { formatSites, loadSites, parseSites } from "../src/check/config.ts";
import {
  BODY_FRAMING_HEADER,
  FORBIDDEN_METHODS,
  headerValueProblem,
  IGNORED_HEADERS,
  isBadPort,
} from "../src/check/_fetch_limits.ts";
import type { Site } from "../src/check/site.ts";
import SHIPPED from "../sites.toml" with { type: "text" };

const toml = (...lines: string[]): string => lines.join("\n") + "\n";
const SITE = ["[[site]]", 'name = "api"', 'url = "https://api.example.com/health"'];

/** A site with every default applied, as parseSites() returns it for SITE. */
const API: Site = {
  name: "api",
  url: "https://api.example.com/health",
  shownUrl: "https://api.example.com/health",
  intervalMs: 60_000,
  timeoutMs: 10_000,
  method: "GET",
  headers: {},
  body: null,
  expectStatus: [{ min: 200, max: 399 }],
  regex: null,
  followRedirects: true,
  maxBodyBytes: 1_048_576,
};

const ALLOWED_SITE = "'name', 'url', 'interval', 'timeout', 'method', 'headers', 'body', 'expect_status', " +
  "'regex', 'follow_redirects', 'max_body_bytes'";
const ALLOWED_DEFAULTS = ALLOWED_SITE.replace("'name', 'url', ", "");
const DURATION = `a duration such as "30s", "1m" or "500ms"`;
const STATUSES = `a list of status codes from 100 to 599 or ranges such as [200, "300-399"]`;
const NAME = "a string of 1 to 200 characters without control characters";
const NAME_TOO_LONG =
  "must be at most 200 UTF-16 code units long (the sink's limit; a character such as an " +
  "emoji counts 2)";
const URL_TOO_LONG = "must be at most 4096 UTF-16 code units long as published (the sink's limit)";
const REGEX_TOO_LONG = URL_TOO_LONG;
const FORBIDDEN_METHOD = "must be a method fetch can send, which excludes CONNECT, TRACE, TRACK";

/** [behaviour, sites.toml text, the exact ConfigError message] */
const BAD: [string, string, string][] = [
  [
    "rejects an unparsable duration, naming file, line, site and key",
    toml("# sites", "", "[defaults]", 'timeout = "5s"', "", ...SITE, 'interval = "fast"'),
    `sites.toml:9: Cannot load site 'api': key 'interval' must be ${DURATION}: got "fast"`,
  ],
  [
    "reports a TOML syntax error with its line and column",
    toml("[[site]]", 'name = "api"', "url = "),
    "sites.toml:3:7: Cannot parse TOML: invalid value",
  ],
  [
    "reports a key defined twice as a TOML error",
    toml(...SITE, 'name = "again"'),
    "sites.toml:4:1: Cannot parse TOML: trying to redefine an already defined table or value",
  ],
  [
    "rejects an unknown key in a site, listing the allowed keys",
    toml(...SITE, 'intervall = "30s"'),
    `sites.toml:4: Cannot load site 'api': key 'intervall' is unknown: allowed keys are ${ALLOWED_SITE}`,
  ],
  [
    "rejects an unknown key in [defaults], listing the allowed keys",
    toml("[defaults]", "retries = 3", ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'retries' is unknown: allowed keys are ${ALLOWED_DEFAULTS}`,
  ],
  [
    "rejects a url in [defaults]",
    toml("[defaults]", 'url = "https://example.com/"', ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'url' is only allowed in [[site]]: allowed keys are ${ALLOWED_DEFAULTS}`,
  ],
  [
    "rejects an unknown top-level table such as [[sites]]",
    toml("[[sites]]", 'name = "api"'),
    "sites.toml:1: Cannot load config: key 'sites' is unknown: allowed keys are 'defaults' and 'site'",
  ],
  [
    "rejects an unknown top-level key",
    toml('title = "x"', ...SITE),
    "sites.toml:1: Cannot load config: key 'title' is unknown: allowed keys are 'defaults' and 'site'",
  ],
  [
    "rejects [defaults] that is not a table",
    toml("defaults = 1", ...SITE),
    "sites.toml:1: Cannot load config: key 'defaults' must be a table written [defaults]: got 1",
  ],
  [
    "rejects [site] written as a single table",
    toml("[site]", 'name = "api"'),
    "sites.toml:1: Cannot load config: key 'site' must be an array of tables written [[site]]: got a table",
  ],
  [
    "rejects an empty file",
    "",
    "sites.toml:1: Cannot load config: the file contains no [[site]] entries: expected at least one",
  ],
  [
    "rejects a file with [defaults] and no site",
    toml("[defaults]", 'interval = "30s"'),
    "sites.toml:1: Cannot load config: the file contains no [[site]] entries: expected at least one",
  ],
  [
    "rejects a missing name at the site's header line",
    toml(...SITE, "", "[[site]]", 'url = "https://example.com/"'),
    `sites.toml:5: Cannot load site #2: key 'name' is missing: expected ${NAME}`,
  ],
  [
    "rejects an empty name",
    toml("[[site]]", 'name = ""'),
    `sites.toml:2: Cannot load site #1: key 'name' must be ${NAME}: got ""`,
  ],
  [
    "rejects a name with a control character",
    toml("[[site]]", 'name = "a\\tb"'),
    `sites.toml:2: Cannot load site #1: key 'name' must be ${NAME}: got "a\\tb"`,
  ],
  [
    "rejects a name of more than 200 characters",
    toml("[[site]]", `name = "${"n".repeat(201)}"`),
    `sites.toml:2: Cannot load site #1: key 'name' ${NAME_TOO_LONG}: got 201`,
  ],
  [
    "rejects a name of 150 emoji, 300 UTF-16 code units as the sink counts them",
    toml("[[site]]", `name = "${"😀".repeat(150)}"`),
    `sites.toml:2: Cannot load site #1: key 'name' ${NAME_TOO_LONG}: got 300`,
  ],
  [
    "rejects a name with NUL",
    toml("[[site]]", 'name = "a\\u0000b"'),
    `sites.toml:2: Cannot load site #1: key 'name' must be ${NAME}: got "a\\u0000b"`,
  ],
  [
    "rejects a name with an unpaired surrogate",
    toml("[[site]]", 'name = "a\uD800b"'),
    `sites.toml:2: Cannot load site #1: key 'name' must be valid Unicode: got an unpaired surrogate in "a\\ud800b"`,
  ],
  [
    "rejects a name that is not a string",
    toml("[[site]]", "name = 42"),
    `sites.toml:2: Cannot load site #1: key 'name' must be ${NAME}: got 42`,
  ],
  [
    "rejects a duplicate name, naming the line of the first",
    toml(...SITE, "", ...SITE),
    "sites.toml:6: Cannot load site 'api': key 'name' must be unique: 'api' is already used on line 2",
  ],
  [
    "rejects a missing url at the site's header line",
    toml("[[site]]", 'name = "api"', 'interval = "30s"'),
    "sites.toml:1: Cannot load site 'api': key 'url' is missing: expected an absolute http or https URL",
  ],
  [
    "rejects a url that is not http or https",
    toml("[[site]]", 'name = "api"', 'url = "ftp://example.com/"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must be an absolute http or https URL: got "ftp://example.com/"`,
  ],
  [
    "rejects a url that is not absolute",
    toml("[[site]]", 'name = "api"', 'url = "example.com"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must be an absolute http or https URL: got "example.com"`,
  ],
  [
    "rejects a url longer than the sink takes",
    toml("[[site]]", 'name = "api"', `url = "https://api.example.com/${"a".repeat(4073)}"`),
    `sites.toml:3: Cannot load site 'api': key 'url' ${URL_TOO_LONG}: got 4097`,
  ],
  [
    "rejects a url longer than the sink takes once percent-encoded as published",
    toml("[[site]]", 'name = "api"', `url = "https://api.example.com/${"é".repeat(679)}"`),
    `sites.toml:3: Cannot load site 'api': key 'url' ${URL_TOO_LONG}: got 4098`,
  ],
  [
    "rejects a url with port 6000, which fetch refuses",
    toml("[[site]]", 'name = "api"', 'url = "http://127.0.0.1:6000/x11"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must not use port 6000: fetch refuses it (a "bad port" ` +
    "in the Fetch standard)",
  ],
  [
    "rejects a url with port 0, which fetch refuses",
    toml("[[site]]", 'name = "api"', 'url = "https://api.example.com:0/"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must not use port 0: fetch refuses it (a "bad port" ` +
    "in the Fetch standard)",
  ],
  [
    "rejects a url that is not a string",
    toml("[[site]]", 'name = "api"', "url = 1"),
    "sites.toml:3: Cannot load site 'api': key 'url' must be an absolute http or https URL: got 1",
  ],
  [
    "rejects a regex that does not compile",
    toml(...SITE, 'regex = "(unclosed"'),
    `sites.toml:4: Cannot load site 'api': key 'regex' must be a valid JavaScript regular expression: ` +
    `got "(unclosed" (Unterminated group)`,
  ],
  [
    "rejects a regex with a lookahead in [defaults], which no linear-time engine can run",
    toml("[defaults]", String.raw`regex = 'ok(?=\n)'`, ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'regex' "ok(?=\\\\n)": Cannot use a lookahead ('(?='): ` +
    "only a backtracking match can check it, which has no time bound; match the text itself instead, such " +
    "as 'ab' for 'a(?=b)'",
  ],
  [
    "rejects a regex longer than the sink takes",
    toml(...SITE, `regex = "${"a".repeat(4097)}"`),
    `sites.toml:4: Cannot load site 'api': key 'regex' ${REGEX_TOO_LONG}: got 4097`,
  ],
  [
    "rejects a regex longer than the sink takes once '/' is escaped as published",
    toml("[defaults]", `regex = '${"a".repeat(4095)}/'`, ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'regex' ${REGEX_TOO_LONG}: got 4097 (4096 as written, before ` +
    "escaping)",
  ],
  [
    "rejects a regex with a NUL character, which the sink refuses",
    toml(...SITE, 'regex = "a\\u0000b"'),
    "sites.toml:4: Cannot load site 'api': key 'regex' must be a pattern without a NUL character (match one " +
    'with \\x00): got "a\\u0000b"',
  ],
  [
    "rejects a regex that is not a string",
    toml(...SITE, "regex = true"),
    "sites.toml:4: Cannot load site 'api': key 'regex' must be a JavaScript regular expression as a string: got true",
  ],
  [
    "rejects an interval under 1s",
    toml(...SITE, 'interval = "500ms"'),
    `sites.toml:4: Cannot load site 'api': key 'interval' must be at least "1s": got "500ms"`,
  ],
  [
    "rejects an interval over 24h",
    toml(...SITE, 'interval = "25h"'),
    `sites.toml:4: Cannot load site 'api': key 'interval' must be at most "24h": got "25h"`,
  ],
  [
    "rejects an interval in [defaults] under 1s",
    toml("[defaults]", 'interval = "999ms"', ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'interval' must be at least "1s": got "999ms"`,
  ],
  [
    "rejects a duration that is a number",
    toml(...SITE, "interval = 30"),
    `sites.toml:4: Cannot load site 'api': key 'interval' must be ${DURATION}: got 30`,
  ],
  [
    "rejects a timeout of zero",
    toml(...SITE, 'timeout = "0s"'),
    `sites.toml:4: Cannot load site 'api': key 'timeout' must be more than "0s": got "0s"`,
  ],
  [
    "rejects a timeout longer than the interval",
    toml(...SITE, 'interval = "30s"', 'timeout = "1m"'),
    `sites.toml:5: Cannot load site 'api': key 'timeout' must not be longer than the interval "30s": got "1m"`,
  ],
  [
    "rejects a timeout from [defaults] longer than the site's interval, at the interval's line",
    toml("[defaults]", 'timeout = "20s"', ...SITE, 'interval = "10s"'),
    `sites.toml:6: Cannot load site 'api': key 'timeout' (from [defaults]) must not be longer than the ` +
    `interval "10s": got "20s"`,
  ],
  [
    "rejects a timeout longer than the interval when both come from [defaults], at [defaults]",
    toml("[defaults]", 'interval = "5s"', 'timeout = "6s"', ...SITE),
    `sites.toml:3: Cannot load site 'api': key 'timeout' (from [defaults]) must not be longer than the ` +
    `interval "5s": got "6s"`,
  ],
  [
    "rejects a body with method GET",
    toml(...SITE, 'body = "{}"'),
    `sites.toml:4: Cannot load site 'api': key 'body' must not be set with method "GET": a GET or HEAD ` +
    `request has no body`,
  ],
  [
    "rejects a body from [defaults] with a site's method HEAD, at the method's line",
    toml("[defaults]", 'method = "POST"', 'body = "{}"', ...SITE, 'method = "head"'),
    `sites.toml:7: Cannot load site 'api': key 'body' (from [defaults]) must not be set with method "HEAD": ` +
    `a GET or HEAD request has no body`,
  ],
  [
    "rejects a body that is not a string without showing it",
    toml(...SITE, 'method = "POST"', "body = { a = 1 }"),
    "sites.toml:5: Cannot load site 'api': key 'body' must be a string: got a table",
  ],
  [
    "rejects a method that is not letters",
    toml(...SITE, 'method = "GET /"'),
    `sites.toml:4: Cannot load site 'api': key 'method' must be an HTTP method of letters such as "GET": got "GET /"`,
  ],
  [
    "rejects method CONNECT in any letter case, which fetch refuses",
    toml(...SITE, 'method = "connect"'),
    `sites.toml:4: Cannot load site 'api': key 'method' ${FORBIDDEN_METHOD}: got "connect"`,
  ],
  [
    "rejects method TRACE, which fetch refuses",
    toml(...SITE, 'method = "TRACE"'),
    `sites.toml:4: Cannot load site 'api': key 'method' ${FORBIDDEN_METHOD}: got "TRACE"`,
  ],
  [
    "rejects method TRACK in [defaults], which fetch refuses",
    toml("[defaults]", 'method = "Track"', ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'method' ${FORBIDDEN_METHOD}: got "Track"`,
  ],
  [
    "rejects follow_redirects that is not a boolean",
    toml(...SITE, 'follow_redirects = "yes"'),
    `sites.toml:4: Cannot load site 'api': key 'follow_redirects' must be true or false: got "yes"`,
  ],
  [
    "rejects max_body_bytes over 64 MiB",
    toml(...SITE, "max_body_bytes = 67108865"),
    "sites.toml:4: Cannot load site 'api': key 'max_body_bytes' must be an integer from 0 to 67108864: " +
    "got 67108865",
  ],
  [
    "rejects max_body_bytes that is not an integer",
    toml(...SITE, 'max_body_bytes = "1MiB"'),
    `sites.toml:4: Cannot load site 'api': key 'max_body_bytes' must be an integer from 0 to 67108864: ` +
    `got "1MiB"`,
  ],
  [
    "rejects expect_status that is not a list",
    toml(...SITE, "expect_status = 200"),
    `sites.toml:4: Cannot load site 'api': key 'expect_status' must be ${STATUSES}: got 200`,
  ],
  [
    "rejects an empty expect_status",
    toml(...SITE, "expect_status = []"),
    `sites.toml:4: Cannot load site 'api': key 'expect_status' must be ${STATUSES}: got an empty list`,
  ],
  [
    'rejects an expect_status entry like "2xx"',
    toml(...SITE, 'expect_status = [200, "2xx"]'),
    `sites.toml:4: Cannot load site 'api': key 'expect_status' must be ${STATUSES}: got "2xx"`,
  ],
  [
    "rejects an expect_status code over 599, at the entry's line in a multi-line list",
    toml(...SITE, "expect_status = [", "  200,", "  # comment, ]", "", "  600,", "]"),
    `sites.toml:8: Cannot load site 'api': key 'expect_status' must be ${STATUSES}: got 600`,
  ],
  [
    "rejects an expect_status code under 100",
    toml(...SITE, 'expect_status = ["99-200"]'),
    `sites.toml:4: Cannot load site 'api': key 'expect_status' must be ${STATUSES}: got "99-200"`,
  ],
  [
    "rejects an expect_status range with the higher code first",
    toml(...SITE, 'expect_status = ["399-200"]'),
    `sites.toml:4: Cannot load site 'api': key 'expect_status' must be a list of ranges with the lower code ` +
    `first, such as "200-399": got "399-200"`,
  ],
  [
    "rejects headers that are not a table",
    toml(...SITE, 'headers = "Accept: */*"'),
    `sites.toml:4: Cannot load site 'api': key 'headers' must be a table of header names to strings: ` +
    `got "Accept: */*"`,
  ],
  [
    "rejects a header name that is not an HTTP token, at its line in [site.headers]",
    toml(...SITE, "[site.headers]", 'Accept = "*/*"', '"Bad Name" = "x"'),
    `sites.toml:6: Cannot load site 'api': key 'headers' must be a table with HTTP token names such as ` +
    `"X-Api-Key": got "Bad Name"`,
  ],
  [
    "rejects a header value that is not a string without showing it",
    toml(...SITE, "headers = { X-Retry = 3 }"),
    `sites.toml:4: Cannot load site 'api': key 'headers' must be a table of header names to strings: ` +
    `got a number for "X-Retry"`,
  ],
  [
    "rejects a header value with a line break without showing the value",
    toml("[defaults]", 'headers.Authorization = "Bearer secret\\r\\nX: y"', ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'headers' must be a table of values without CR, LF or NUL: ` +
    `got one in "Authorization" (value not shown)`,
  ],
  [
    "rejects a header value that is not a ByteString without showing it",
    toml(...SITE, "[site.headers]", 'Accept = "*/*"', 'X-Test = "café €"'),
    `sites.toml:6: Cannot load site 'api': key 'headers' must be a table of values fetch can send, ByteStrings ` +
    `(characters up to U+00FF): got a character over U+00FF in "X-Test" (value not shown)`,
  ],
  [
    "rejects a header value with a control character other than CR, LF or NUL without showing it",
    toml("[defaults]", 'headers = { X-Test = "a\\u0001b" }', ...SITE),
    `sites.toml:2: Cannot load [defaults]: key 'headers' must be a table of values without control ` +
    `characters other than tab, which fetch refuses: got one in "X-Test" (value not shown)`,
  ],
  [
    "rejects a header value with DEL without showing it",
    toml(...SITE, 'headers = { X-Test = "a\\u007Fb" }'),
    `sites.toml:4: Cannot load site 'api': key 'headers' must be a table of values without control ` +
    `characters other than tab, which fetch refuses: got one in "X-Test" (value not shown)`,
  ],
  [
    "rejects a Host header, which fetch ignores",
    toml(...SITE, "[site.headers]", 'Host = "www.example.com"'),
    `sites.toml:5: Cannot load site 'api': key 'headers' must not set "Host": fetch ignores it and sends ` +
    "the host of 'url'",
  ],
  [
    "rejects a Content-Length header in [defaults] in any letter case, which fetch ignores",
    toml("[defaults]", 'method = "POST"', 'body = "ping"', 'headers = { content-length = "4" }', ...SITE),
    `sites.toml:4: Cannot load [defaults]: key 'headers' must not set "content-length": fetch ignores it ` +
    "and sends the length of the body",
  ],
  [
    "rejects a Transfer-Encoding header on a site without a body, which fetch drops",
    toml(...SITE, "[site.headers]", 'Accept = "*/*"', 'Transfer-Encoding = "chunked"'),
    `sites.toml:6: Cannot load site 'api': key 'headers' must not set "Transfer-Encoding" without a body: ` +
    "fetch drops it from a request without one",
  ],
  [
    "rejects a Transfer-Encoding header from [defaults] on a site without a body, at [defaults]",
    toml(
      "[defaults]",
      'method = "POST"',
      'headers = { Transfer-Encoding = "chunked" }',
      ...SITE,
      'headers = { X-Other = "1" }',
    ),
    `sites.toml:3: Cannot load site 'api': key 'headers' (from [defaults]) must not set "Transfer-Encoding" ` +
    "without a body: fetch drops it from a request without one",
  ],
  [
    "rejects a header set twice in different letter case",
    toml(...SITE, "[site.headers]", 'Accept = "*/*"', 'accept = "text/html"'),
    `sites.toml:6: Cannot load site 'api': key 'headers' must be a table with each header once: ` +
    `got "Accept" and "accept"`,
  ],
  [
    "rejects a name with a bidi control, which shows it reversed",
    toml("[[site]]", 'name = "shop\\u202Egnp"', 'url = "https://api.example.com/"'),
    "sites.toml:2: Cannot load site #1: key 'name' must not hold U+202E: invisible characters " +
    "(zero-width, bidi controls, line separators) make a name look like another one, or show text around it reversed",
  ],
  [
    "rejects a name with a zero-width space, which looks like the name without it",
    toml(...SITE, "[[site]]", 'name = "api\\u200B"', 'url = "https://api.example.com/"'),
    "sites.toml:5: Cannot load site #2: key 'name' must not hold U+200B: invisible characters (zero-width, " +
    "bidi controls, line separators) make a name look like another one, or show text around it reversed",
  ],
  [
    "rejects a name with a line separator",
    toml("[[site]]", 'name = "a\\u2028b"', 'url = "https://api.example.com/"'),
    "sites.toml:2: Cannot load site #1: key 'name' must not hold U+2028: invisible characters (zero-width, " +
    "bidi controls, line separators) make a name look like another one, or show text around it reversed",
  ],
  [
    "rejects a name that ends with white space, which looks like the name without it",
    toml("[[site]]", 'name = "api "', 'url = "https://api.example.com/"'),
    `sites.toml:2: Cannot load site #1: key 'name' must not start or end with white space: got "api "`,
  ],
  [
    "rejects a name of spaces alone",
    toml("[[site]]", 'name = "   "', 'url = "https://api.example.com/"'),
    `sites.toml:2: Cannot load site #1: key 'name' must not start or end with white space: got "   "`,
  ],
  [
    "rejects a duration too large to count as over the limit, not as no duration",
    toml(...SITE, 'timeout = "99999999999999999999h"'),
    `sites.toml:4: Cannot load site 'api': key 'timeout' must be at most "24h": got "99999999999999999999h"`,
  ],
  [
    "rejects a pattern with method HEAD, whose response has no body to match",
    toml(...SITE, 'method = "HEAD"', 'regex = "ok"'),
    `sites.toml:5: Cannot load site 'api': key 'regex' must not be set with method "HEAD": a HEAD response ` +
    "has no body to match",
  ],
  [
    "rejects a pattern with max_body_bytes = 0, from [defaults] too",
    toml("[defaults]", 'regex = "ok"', "max_body_bytes = 0", ...SITE),
    "sites.toml:2: Cannot load site 'api': key 'regex' (from [defaults]) must not be set with max_body_bytes " +
    "= 0: no byte of the body is read",
  ],
  [
    "names the line of a table header of thousands of dotted parts",
    toml(...SITE, "", `[site.headers.${Array(3_000).fill("a").join(".")}]`, "b = 1"),
    `sites.toml:5: Cannot load site 'api': key 'headers' must be a table of header names to strings: ` +
    `got a table for "a"`,
  ],
  [
    "hides a user name and password written in a url of another scheme",
    toml("[[site]]", 'name = "api"', 'url = "ftp://user:hunter2@127.0.0.1/"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must be an absolute http or https URL: got ` +
    `"ftp://***@127.0.0.1/"`,
  ],
  [
    "hides a user name and password written without slashes after the scheme",
    toml("[[site]]", 'name = "api"', 'url = "https:user:hunter2@127.0.0.1:99999/"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must be an absolute http or https URL: got ` +
    `"https:***@127.0.0.1:99999/"`,
  ],
];

for (const [behaviour, text, message] of BAD) {
  Deno.test(`parseSites() ${behaviour}`, () => {
    assertThrows(() => parseSites(text, "sites.toml"), ConfigError, message);
  });
}

Deno.test("parseSites() names the file path as given", () => {
  assertThrows(
    () => parseSites(toml(...SITE, 'interval = "fast"'), "/etc/monitor/sites.toml"),
    ConfigError,
    `/etc/monitor/sites.toml:4: Cannot load site 'api': key 'interval' must be ${DURATION}: got "fast"`,
  );
});

Deno.test("parseSites() finds the line of a key past comments, quoted keys and multi-line strings", () => {
  const text = toml(
    "# [[site]] in a comment is not a table",
    "[defaults] # trailing comment",
    '"interval" = "30s"',
    'body = """',
    "[[site]]",
    'interval = "not a key"',
    '"""',
    "method = 'POST'",
    "",
    "[[site]]",
    "name = 'first' # with ' quotes \"",
    'url = "https://example.com/#a = b"',
    "headers = { 'X-One' = \"1\", \"X-Two\" = '''2''' }",
    "",
    "[[site]]",
    '"name" = "second"',
    "url = '''https://example.com/'''",
    "regex = '''",
    "multi-line",
    "literal'''",
    "tags.x = 1",
  );
  assertThrows(
    () => parseSites(text, "sites.toml"),
    ConfigError,
    `sites.toml:21: Cannot load site 'second': key 'tags' is unknown: allowed keys are ${ALLOWED_SITE}`,
  );
});

Deno.test("parseSites() finds the line of a key in an inline array of sites", () => {
  const text = toml(
    "site = [",
    '  { name = "a", url = "https://a.example/" },',
    '  { name = "b", url = "https://b.example/",',
    '    interval = "1x" },',
    "]",
  );
  assertThrows(
    () => parseSites(text, "sites.toml"),
    ConfigError,
    `sites.toml:4: Cannot load site 'b': key 'interval' must be ${DURATION}: got "1x"`,
  );
});

Deno.test("parseSites() finds the line of a header in [defaults.headers] after several sites", () => {
  const text = toml(
    ...SITE,
    "[site.headers]",
    'A = "1"',
    "[[site]]",
    'name = "b"',
    "[defaults.headers]",
    "",
    '"B C" = "2"',
  );
  assertThrows(
    () => parseSites(text, "sites.toml"),
    ConfigError,
    `sites.toml:10: Cannot load [defaults]: key 'headers' must be a table with HTTP token names such as ` +
      `"X-Api-Key": got "B C"`,
  );
});

Deno.test("parseSites() applies the built-in defaults to a site with only a name and url", () => {
  assertEquals(parseSites(toml(...SITE), "sites.toml"), [API]);
});

Deno.test("parseSites() makes the default timeout the interval when the interval is under 10s", () => {
  const [site] = parseSites(toml(...SITE, 'interval = "5s"'), "sites.toml");
  assertEquals([site?.intervalMs, site?.timeoutMs], [5_000, 5_000]);
});

Deno.test("parseSites() lets a site inherit from [defaults] and override it, merging headers by name", () => {
  const text = toml(
    "[defaults]",
    'interval = "2m"',
    'timeout = "15s"',
    'method = "post"',
    'body = "ping"',
    "expect_status = [204]",
    'regex = "ok"',
    "follow_redirects = false",
    "max_body_bytes = 10",
    "[defaults.headers]",
    'User-Agent = "monitor"',
    'Authorization = "Bearer a"',
    ...SITE,
    "",
    "[[site]]",
    'name = "web"',
    'url = "http://127.0.0.1:8080"',
    'interval = "1m30s"',
    'method = "GET"',
    'body = ""',
    'regex = ""',
    "headers = { authorization = 'Bearer b', Accept = \"*/*\" }",
  );
  const [api, web] = parseSites(text, "sites.toml");
  const inherited = {
    intervalMs: 120_000,
    timeoutMs: 15_000,
    method: "POST",
    body: "ping",
    expectStatus: [{ min: 204, max: 204 }],
    followRedirects: false,
    maxBodyBytes: 10,
  };
  assertEquals(api, {
    ...API,
    ...inherited,
    headers: { "User-Agent": "monitor", Authorization: "Bearer a" },
    regex: /ok/,
  });
  assertEquals(web, {
    ...API,
    ...inherited,
    name: "web",
    url: "http://127.0.0.1:8080/",
    shownUrl: "http://127.0.0.1:8080/",
    intervalMs: 90_000,
    method: "GET",
    body: null,
    headers: { "User-Agent": "monitor", authorization: "Bearer b", Accept: "*/*" },
    regex: null,
  });
});

Deno.test("parseSites() reads expect_status codes and ranges in order", () => {
  const [site] = parseSites(toml(...SITE, 'expect_status = [200, "404", "500-503", 301.0]'), "sites.toml");
  assertEquals(site?.expectStatus, [{ min: 200, max: 200 }, { min: 404, max: 404 }, { min: 500, max: 503 }, {
    min: 301,
    max: 301,
  }]);
});

Deno.test("parseSites() accepts what fetch sends and the sink takes, up to their limits", () => {
  const url = `https://api.example.com/${"a".repeat(4072)}`;
  const text = toml(
    "[[site]]",
    `name = "${"😀".repeat(100)}"`,
    `url = "${url}"`,
    `regex = "${"a".repeat(4096)}"`,
    'headers = { X-Test = "café\tÿ", Connection = "close" }',
    "[[site]]",
    'name = "..."',
    'url = "https://${SHOP_USER}:${SHOP_PASSWORD}@api.example.com:6001/"',
    'method = "propfind"',
    "[[site]]",
    'name = ".a"',
    'url = "https://api.example.com:443/"',
    'method = "POST"',
    'body = "ping"',
    'headers = { Transfer-Encoding = "chunked" }',
  );
  const sites = parseSites(text, "sites.toml", { SHOP_USER: "u".repeat(4096), SHOP_PASSWORD: "p" });
  assertEquals(sites.map((site) => site.name.length), [200, 3, 2]);
  assertEquals([sites[0]?.shownUrl.length, sites[0]?.regex?.source.length], [4096, 4096]);
  assertEquals(sites[0]?.headers, { "X-Test": "café\tÿ", Connection: "close" });
  assertEquals([sites[1]?.shownUrl, sites[1]?.method], ["https://***@api.example.com:6001/", "PROPFIND"]);
  assertEquals([sites[2]?.url, sites[2]?.headers], ["https://api.example.com/", {
    "Transfer-Encoding": "chunked",
  }]);
});

Deno.test("parseSites() compiles the regex without flags, so testing it keeps no state", () => {
  const [site] = parseSites(toml(...SITE, String.raw`regex = '"status":\s*"ok"'`), "sites.toml");
  assertEquals(site?.regex?.source, String.raw`"status":\s*"ok"`);
  assertEquals(site?.regex?.flags, "");
  assertEquals([site?.regex?.test('{"status": "ok"}'), site?.regex?.test('{"status": "ok"}')], [true, true]);
});

Deno.test("parseSites() returns frozen sites, headers and status ranges", () => {
  const sites = parseSites(toml(...SITE, "headers = { A = 'b' }"), "sites.toml");
  const site = sites[0]!;
  assertEquals(
    [sites, site, site.headers, site.expectStatus, site.expectStatus[0]].map(Object.isFrozen),
    [true, true, true, true, true],
  );
  assertThrows(() => ((site as { name: string }).name = "x"), TypeError);
});

Deno.test("parseSites() keeps sites in file order", () => {
  const text = toml(
    ...SITE,
    "[[site]]",
    'name = "b"',
    'url = "http://b.example/"',
    "[[site]]",
    'name = "c"',
    'url = "http://c.example/"',
  );
  assertEquals(parseSites(text, "sites.toml").map((site) => site.name), ["api", "b", "c"]);
});

Deno.test("the shipped sites.toml parses into the demo sites", () => {
  const sites = parseSites(SHIPPED, "sites.toml");
  assertEquals(sites.map((site) => [site.name, site.url]), [
    ["demo-home", "http://127.0.0.1:8080/"],
    ["demo-slow", "http://127.0.0.1:8080/slow"],
    ["demo-error", "http://127.0.0.1:8080/status/500"],
  ]);
  assertEquals(sites[0]?.regex, /monitor demo ok/);
});

Deno.test("the commented-out examples in the shipped sites.toml parse once uncommented", () => {
  const examples = SHIPPED.slice(SHIPPED.indexOf("# [[site]]")).replace(/^# ?/gm, "");
  const sites = parseSites(examples, "examples", { API_TOKEN: "t0ken" });
  assertEquals(sites.map((site) => site.name), ["example", "api-health"]);
  assertEquals(sites[1]?.method, "POST");
  assertEquals(sites[1]?.headers.Authorization, "Bearer t0ken");
});

// The network test needs --allow-net (the test task grants it); a bare `deno test` skips it.
const net = { ignore: Deno.permissions.querySync({ name: "net" }).state !== "granted" };

Deno.test(
  "what config refuses as fetch's limits is what Deno's fetch refuses or drops on loopback",
  net,
  async () => {
    const received: Headers[] = [];
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (request) => {
      received.push(request.headers);
      await request.body?.cancel();
      return new Response("ok");
    });
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    const base = `http://127.0.0.1:${server.addr.port}/`;
    const send = async (init: RequestInit, url = base): Promise<string | Headers> => {
      received.length = 0;
      try {
        await (await fetch(url, { ...init, client })).body?.cancel();
        return received[0]!;
      } catch (error) {
        return (error as Error).message;
      }
    };
    try {
      for (const method of FORBIDDEN_METHODS.flatMap((m) => [m, m.toLowerCase()])) {
        assertEquals(await send({ method }), "Method is forbidden");
      }
      assertEquals(await send({ method: "PROPFIND" }) instanceof Headers, true);
      const ports = Array.from({ length: 65_536 }, (_, port) => port).filter((port) =>
        isBadPort(String(port))
      );
      assertEquals(ports.length, 83);
      for (const port of [...ports, 6001]) {
        const error = await send({}, `http://127.0.0.1:${port}/`);
        assertEquals(
          error === `Fetch failed: Requests to port ${port} are blocked`,
          port !== 6001,
          `port ${port}`,
        );
      }
      for (const [name, value] of [["Host", "example.com"], ["Content-Length", "4"]] as const) {
        assertEquals(IGNORED_HEADERS.has(name.toLowerCase()), true);
        const sent = await send({ method: "POST", body: "hello", headers: { [name]: value } });
        assertEquals(sent instanceof Headers && sent.get(name) !== value, true, name);
      }
      const framing = await send({ method: "POST", headers: { [BODY_FRAMING_HEADER]: "chunked" } });
      assertEquals(framing instanceof Headers && framing.get(BODY_FRAMING_HEADER), null);
      for (const value of ["café €", "a\u0001b", "a\u007fb", "café\tÿ"]) {
        const sent = await send({ headers: { "X-Test": value } });
        assertEquals(typeof sent === "string", headerValueProblem(value) !== null, JSON.stringify(value));
      }
    } finally {
      client.close();
      await server.shutdown();
    }
  },
);

// File tests need --allow-read and --allow-write (the test task grants them); a bare `deno test` skips them.
const io = {
  ignore: ["read", "write"].some((name) =>
    Deno.permissions.querySync({ name: name as "read" | "write" }).state !== "granted"
  ),
};

Deno.test("loadSites() reads a file and reports errors with its path", io, async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/sites.toml`, toml(...SITE));
    assertEquals(await loadSites(`${dir}/sites.toml`), [API]);
    await Deno.writeTextFile(`${dir}/bad.toml`, toml(...SITE, "x = 1"));
    await assertRejects(
      () => loadSites(`${dir}/bad.toml`),
      ConfigError,
      `${dir}/bad.toml:4: Cannot load site 'api': key 'x' is unknown: allowed keys are ${ALLOWED_SITE}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSites() rejects a missing file with the path and the OS reason", io, async () => {
  const error = await assertRejects(
    () => loadSites("/nonexistent/sites.toml"),
    ConfigError,
    "/nonexistent/sites.toml: Cannot read file: No such file or directory (os error 2)",
  );
  assertEquals(error.cause instanceof Deno.errors.NotFound, true);
});

Deno.test(
  "loadSites() reads a FIFO that is written, and stops at a signal while one is not",
  io,
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const fifo = `${dir}/sites.toml`;
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assertEquals(made.success, true);
      const writing = (async () => {
        using writer = await Deno.open(fifo, { write: true });
        await writer.write(new TextEncoder().encode(toml(...SITE)));
      })();
      const [sites] = await Promise.all([loadSites(fifo), writing]);
      assertEquals(sites.map((site) => site.name), ["api"]);
      // Opening a FIFO waits for a writer: without a bound this never settles, and SIGTERM was not heard.
      const shutdown = new AbortController();
      const timer = setTimeout(() => shutdown.abort(), 200);
      try {
        await assertRejects(
          () => deadline(loadSites(fifo, {}, shutdown.signal), 5_000),
          ConfigError,
          `${fifo}: Cannot read file: stopped by a signal before it was read`,
        );
      } finally {
        clearTimeout(timer);
        // Lets the abandoned open of the FIFO finish, so that no operation is left behind.
        (await Deno.open(fifo, { write: true })).close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("loadSites() reads at most 64 MiB, of a device too, and refuses a folder", io, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const over = `${dir}/huge.toml`;
    await Deno.writeFile(over, new Uint8Array(0));
    await Deno.truncate(over, 64 * 1024 * 1024 + 1); // sparse: no 64 MiB written
    const tooLarge = "Cannot read file: it is over 64 MiB, the most a sites file may be";
    await assertRejects(() => loadSites(over), ConfigError, `${over}: ${tooLarge}`);
    await assertRejects(() => loadSites("/dev/zero"), ConfigError, `/dev/zero: ${tooLarge}`);
    await assertRejects(() => loadSites(dir), ConfigError, `${dir}: Cannot read file: it is a directory`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSites() rejects a file that is not UTF-8", io, async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeFile(file, new Uint8Array([0x6e, 0x61, 0x6d, 0x65, 0xff]));
    await assertRejects(
      () => loadSites(file),
      ConfigError,
      `${file}: Cannot read file: the file is not valid UTF-8`,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("formatSites() lists resolved values and hides header values", () => {
  const text = toml(
    ...SITE,
    'method = "post"',
    'body = "secret body"',
    'regex = "ok$"',
    'expect_status = [200, "300-302"]',
    "follow_redirects = false",
    "headers = { Authorization = 'Bearer secret', Accept = 'text/plain' }",
    "[[site]]",
    'name = "home"',
    'url = "http://127.0.0.1:8080/"',
    'interval = "5s"',
  );
  const listing = formatSites(parseSites(text, "sites.toml"));
  assertEquals(
    listing,
    [
      "site 'api'",
      "  url:              https://api.example.com/health",
      "  interval:         1m",
      "  timeout:          10s",
      "  method:           POST",
      "  expect status:    200, 300-302",
      "  regex:            /ok$/",
      "  follow redirects: no",
      "  max body:         1048576 bytes",
      "  headers:          Authorization: ***, Accept: ***",
      "  body:             11 bytes",
      "",
      "site 'home'",
      "  url:              http://127.0.0.1:8080/",
      "  interval:         5s",
      "  timeout:          5s",
      "  method:           GET",
      "  expect status:    200-399",
      "  regex:            none",
      "  follow redirects: yes",
      "  max body:         1048576 bytes",
      "  headers:          none",
      "  body:             none",
      "",
    ].join("\n"),
  );
  assertEquals(listing.includes("secret"), false);
});

const ENV = { API_TOKEN: "t0ken", SHOP_USER: "shop", SHOP_PASSWORD: "pa:ss@word", HOST: "api.example.com" };

/** The error for ${SLASHED} (a value holding '/') in the user part of line 3's url. */
const SLASHED_IN_USER_PART =
  "sites.toml:3: Cannot load site 'api': key 'url' puts environment variable 'SLASHED' in the URL's user " +
  "name or password, and its value holds '/', which would end the host part and move the rest into the path " +
  "(value not shown): percent-encode it (%2F)";

/** [behaviour, sites.toml text, the exact ConfigError message] with {@linkcode ENV} as the environment. */
const BAD_ENV: [string, string, string][] = [
  [
    "names the file, line and variable of a header value that refers to an unset variable",
    toml(...SITE, "", "[site.headers]", 'Authorization = "Bearer ${API_KEY}"'),
    "sites.toml:6: Cannot load site 'api': key 'headers.Authorization' uses environment variable 'API_KEY', " +
    "which is not set",
  ],
  [
    "names the line of a url that refers to an unset variable",
    toml("[[site]]", 'name = "api"', "", 'url = "https://${USER_NAME}:x@api.example.com/"'),
    "sites.toml:4: Cannot load site 'api': key 'url' uses environment variable 'USER_NAME', which is not set",
  ],
  [
    "names [defaults] for a default header that refers to an unset variable",
    toml("[defaults]", 'headers = { X-Key = "${NOPE}" }', ...SITE),
    "sites.toml:2: Cannot load [defaults]: key 'headers.X-Key' uses environment variable 'NOPE', which is not set",
  ],
  [
    "rejects a reference without its closing brace",
    toml(...SITE, 'headers = { X-Key = "${API_TOKEN" }'),
    `sites.toml:4: Cannot load site 'api': key 'headers.X-Key' has a malformed reference "\${API_TOKEN": ` +
    "expected ${NAME} with letters, digits and '_'",
  ],
  [
    "rejects a reference to a name that is not a variable name",
    toml("[[site]]", 'name = "api"', 'url = "https://example.com/${1X}"'),
    `sites.toml:3: Cannot load site 'api': key 'url' has a malformed reference "\${1X}": ` +
    "expected ${NAME} with letters, digits and '_'",
  ],
  [
    "validates the url after replacing, but shows it as written",
    toml("[[site]]", 'name = "api"', 'url = "${API_TOKEN}"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must be an absolute http or https URL: got "\${API_TOKEN}"`,
  ],
  [
    "rejects a header whose value from the environment has a line break, without showing it",
    toml(...SITE, 'headers = { X-Key = "${TWO_LINES}" }'),
    "sites.toml:4: Cannot load site 'api': key 'headers' must be a table of values without CR, LF or NUL: " +
    `got one in "X-Key" (value not shown)`,
  ],
  [
    "rejects a header whose value from the environment is not a ByteString, without showing it",
    toml(...SITE, 'headers = { Authorization = "Bearer ${EURO}" }'),
    "sites.toml:4: Cannot load site 'api': key 'headers' must be a table of values fetch can send, " +
    `ByteStrings (characters up to U+00FF): got a character over U+00FF in "Authorization" (value not shown)`,
  ],
  [
    "rejects a url whose port from the environment is one fetch refuses",
    toml("[[site]]", 'name = "api"', 'url = "http://${HOST}:${PORT}/"'),
    `sites.toml:3: Cannot load site 'api': key 'url' must not use port 10080: fetch refuses it (a "bad port" ` +
    "in the Fetch standard)",
  ],
  [
    "rejects a variable in the password whose value would end the host part and move the secret into the path",
    toml("[[site]]", 'name = "api"', 'url = "http://${SHOP_USER}:${SLASHED}@127.0.0.1:8080/health"'),
    SLASHED_IN_USER_PART,
  ],
  [
    "rejects a variable in the user name whose value holds '#'",
    toml("[[site]]", 'name = "api"', 'url = "http://${HASHED}@127.0.0.1:8080/health"'),
    "sites.toml:3: Cannot load site 'api': key 'url' puts environment variable 'HASHED' in the URL's user name " +
    "or password, and its value holds '#', which would end the host part and move the rest into the path " +
    "(value not shown): percent-encode it (%23)",
  ],
  [
    "finds the user part however the URL parser does: no slashes after the scheme, a port from a variable",
    toml("[[site]]", 'name = "api"', 'url = " https:${SHOP_USER}:${SLASHED}@127.0.0.1:${PORT}/health"'),
    SLASHED_IN_USER_PART,
  ],
  [
    "rejects a variable in the host whose value holds '@', which would send the request to another host",
    toml("[[site]]", 'name = "api"', 'url = "https://u:${SHOP_PASSWORD}@${AT_HOST}/"'),
    "sites.toml:3: Cannot load site 'api': key 'url' puts environment variable 'AT_HOST' in the URL's host, " +
    "and its value holds '@', which would send the request to the host after it (value not shown)",
  ],
];

for (const [behaviour, text, message] of BAD_ENV) {
  Deno.test(`parseSites() ${behaviour}`, () => {
    assertThrows(
      () =>
        parseSites(text, "sites.toml", {
          ...ENV,
          TWO_LINES: "a\r\nb",
          EURO: "5€",
          PORT: "10080",
          SLASHED: "8080/secret",
          HASHED: "abc#secret",
          AT_HOST: "evil@good.example",
        }),
      ConfigError,
      message,
    );
  });
}

Deno.test("parseSites() replaces ${NAME} in urls and header values from the environment, $${ staying literal", () => {
  const text = toml(
    "[defaults]",
    'headers = { Authorization = "Bearer ${API_TOKEN}" }',
    "[[site]]",
    'name = "api"',
    'url = "https://${HOST}/health?tag=$${x}"',
    'headers = { X-Note = "cost: $${API_TOKEN} is ${API_TOKEN}" }',
  );
  const [site] = parseSites(text, "sites.toml", ENV);
  assertEquals(site?.url, "https://api.example.com/health?tag=${x}");
  assertEquals(site?.headers, { Authorization: "Bearer t0ken", "X-Note": "cost: ${API_TOKEN} is t0ken" });
});

Deno.test("parseSites() keeps credentials of a url for the request and hides them in shownUrl", () => {
  const text = toml(
    "[[site]]",
    'name = "shop"',
    'url = "https://${SHOP_USER}:${SHOP_PASSWORD}@shop.example.com:8443/admin?x=1"',
    "[[site]]",
    'name = "user-only"',
    'url = "http://someone@127.0.0.1:8080/"',
  );
  const [shop, userOnly] = parseSites(text, "sites.toml", ENV);
  assertEquals(shop?.url, "https://shop:pa%3Ass%40word@shop.example.com:8443/admin?x=1");
  assertEquals(shop?.shownUrl, "https://***@shop.example.com:8443/admin?x=1");
  assertEquals(userOnly?.shownUrl, "http://***@127.0.0.1:8080/");
  const listing = formatSites([shop!, userOnly!]);
  assertEquals(listing.split("\n").filter((line) => line.startsWith("  url:")), [
    "  url:              https://***@shop.example.com:8443/admin?x=1",
    "  url:              http://***@127.0.0.1:8080/",
  ]);
  assertEquals(/shop:|pa%3Ass|someone/.test(listing), false);
});
