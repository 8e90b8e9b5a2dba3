import { assertEquals, assertMatch, assertThrows } from "./_assert.ts";
import { checkIdToUuid } from "../src/check_id.ts";
import { type CheckResult, decodeCheck, DEFAULT_INTERVAL_MS, encodeCheck } from "../src/message.ts";

const valid: CheckResult = {
  v: 1,
  id: "01936b2c-5d1e-7f3a-9b2c-1d2e3f4a5b6c",
  site: "shop",
  url: "https://shop.example.com/health",
  agent: "eu-1",
  region: "eu-west",
  scheduled_at: "2026-11-23T10:00:00.000Z",
  started_at: "2026-11-23T10:00:00.004Z",
  up: false,
  status: 503,
  ttfb_ms: 12.5,
  duration_ms: 13.25,
  bytes: 120,
  regex: "ok",
  regex_matched: false,
  cert_expires_at: "2027-01-01T00:00:00Z",
  error: { kind: "http", message: "Status 503 is not in 200-399" },
  interval_ms: 30_000,
};

const bytes = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

Deno.test("decodeCheck() round-trips what encodeCheck() writes", () => {
  assertEquals(decodeCheck(encodeCheck(valid)), valid);
});

Deno.test("decodeCheck() ignores fields it does not know (version 1 can grow)", () => {
  assertEquals(decodeCheck(bytes({ ...valid, future_field: [1, 2] })), valid);
});

Deno.test("decodeCheck() reads a message without interval_ms (written before the field) as 60000 ms", () => {
  const { interval_ms: _, ...older } = valid;
  assertEquals(DEFAULT_INTERVAL_MS, 60_000);
  assertEquals(decodeCheck(bytes(older)), { ...valid, interval_ms: 60_000 });
});

Deno.test("decodeCheck() reads durations to the microsecond, so a tiny one is 0, not a value the database refuses", () => {
  // PostgreSQL's real refuses 1e-320 ("out of range for type real"): the batch failed until halving found it.
  for (const tiny of [1e-320, 5e-324, 1e-50, 0.0004]) {
    const decoded = decodeCheck(bytes({ ...valid, ttfb_ms: tiny, duration_ms: tiny }));
    assertEquals([decoded.ttfb_ms, decoded.duration_ms], [0, 0]);
  }
  const decoded = decodeCheck(bytes({ ...valid, ttfb_ms: 12.3456789, duration_ms: 86_399_999.9996 }));
  assertEquals([decoded.ttfb_ms, decoded.duration_ms], [12.346, 86_400_000]);
});

Deno.test("decodeCheck() accepts a ULID as the check id", () => {
  const id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  assertEquals(decodeCheck(bytes({ ...valid, id })).id, id);
  assertEquals(checkIdToUuid(id), "01563e3a-b5d3-d676-4c61-efb99302bd5b");
});

Deno.test("decodeCheck() checks a repeated value for each field it appears in, not once for all", () => {
  // The decoder keeps values it has seen (a site's name, URL, pattern, error message) and skips their checks
  // when they come again; a value accepted as a pattern or an error message must still fail as a name or a URL.
  const odd = "a\nb";
  for (let i = 0; i < 2; i++) {
    const seen = decodeCheck(bytes({ ...valid, regex: odd, error: { kind: "http", message: odd } }));
    assertEquals([seen.regex, seen.error?.message], [odd, odd]);
    assertThrows(
      () => decodeCheck(bytes({ ...valid, agent: odd })),
      RangeError,
      "Cannot decode check: field 'agent' must not contain control characters",
    );
    assertThrows(
      () => decodeCheck(bytes({ ...valid, url: "a name" })),
      RangeError,
      "Cannot decode check: field 'url' must be an absolute URL: got 'a name'",
    );
    assertEquals(decodeCheck(bytes({ ...valid, site: "a name" })).site, "a name");
  }
  // Many distinct values (more than the decoder keeps) decode as they are.
  for (let i = 0; i < 30_000; i++) {
    const url = `https://site-${i}.example.test/${"p".repeat(100)}`;
    if (decodeCheck(bytes({ ...valid, url, site: `site-${i}` })).url !== url) throw new Error(url);
  }
});

const bad: [
  string,
  unknown,
  ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor | SyntaxErrorConstructor,
  string,
][] = [
  ["not JSON", "{oops", SyntaxError, "Cannot decode check: the value is not JSON: "],
  ["an array", [1], TypeError, "Cannot decode check: the value is an array, not an object"],
  ["no version", { ...valid, v: undefined }, TypeError, "Cannot decode check: field 'v' is missing"],
  ["version 2", { ...valid, v: 2 }, RangeError, "Cannot decode check: version number 2 is not supported"],
  ["a missing field", { ...valid, url: undefined }, TypeError, "Cannot decode check: field 'url' is missing"],
  [
    "a string status",
    { ...valid, status: "503" },
    TypeError,
    "Cannot decode check: field 'status' must be a number: got '503'",
  ],
  [
    "a status out of range",
    { ...valid, status: 99 },
    RangeError,
    "Cannot decode check: field 'status' must be between 100 and 599: got 99",
  ],
  [
    "a fractional status",
    { ...valid, status: 200.5 },
    TypeError,
    "Cannot decode check: field 'status' must be an integer: got number 200.5",
  ],
  [
    "a negative duration",
    { ...valid, duration_ms: -1 },
    RangeError,
    "Cannot decode check: field 'duration_ms' must be between 0 and 86400000: got -1",
  ],
  [
    "a bad id",
    { ...valid, id: "123" },
    RangeError,
    "Cannot decode check: field 'id' must be a UUID or a ULID: got '123'",
  ],
  [
    "a local time",
    { ...valid, started_at: "2026-11-23T10:00:00+01:00" },
    RangeError,
    "Cannot decode check: field 'started_at' must be an RFC 3339 UTC timestamp: got '2026-11-23T10:00:00+01:00'",
  ],
  [
    "an impossible date",
    { ...valid, started_at: "2026-02-31T10:00:00Z" },
    RangeError,
    "Cannot decode check: field 'started_at' must be an RFC 3339 UTC timestamp: got '2026-02-31T10:00:00Z'",
  ],
  [
    "a non-http URL",
    { ...valid, url: "ftp://x/" },
    RangeError,
    "Cannot decode check: field 'url' must be an http or https URL: got 'ftp://x/'",
  ],
  [
    "an empty site",
    { ...valid, site: "" },
    RangeError,
    "Cannot decode check: field 'site' must be 1 to 200 UTF-16 code units long (an emoji counts 2): got 0",
  ],
  [
    "a NUL in a site",
    { ...valid, site: "a\u0000b" },
    RangeError,
    "Cannot decode check: field 'site' must not contain NUL",
  ],
  [
    "an unpaired surrogate in a site",
    { ...valid, site: "bad\ud800" },
    RangeError,
    "Cannot decode check: field 'site' must be valid Unicode: it holds an unpaired surrogate",
  ],
  [
    "an unpaired surrogate in a region",
    { ...valid, region: "eu\udc00" },
    RangeError,
    "Cannot decode check: field 'region' must be valid Unicode: it holds an unpaired surrogate",
  ],
  [
    "an unpaired surrogate in an error message",
    { ...valid, error: { kind: "http", message: "bad \ud800 half" } },
    RangeError,
    "Cannot decode check: field 'error.message' must be valid Unicode: it holds an unpaired surrogate",
  ],
  [
    "a control character in an agent",
    { ...valid, agent: "a\nb" },
    RangeError,
    "Cannot decode check: field 'agent' must not contain control characters",
  ],
  [
    "an unknown error kind",
    { ...valid, error: { kind: "boom", message: "x" } },
    RangeError,
    "Cannot decode check: field 'error.kind' must be one of dns, connect, tls, timeout, http, content, redirects, other: got 'boom'",
  ],
  [
    "up with an error",
    { ...valid, up: true },
    RangeError,
    "Cannot decode check: field 'up' is true but field 'error' is set",
  ],
  [
    "down without an error",
    { ...valid, error: null },
    RangeError,
    "Cannot decode check: field 'up' is false but field 'error' is null",
  ],
  [
    "a null up",
    { ...valid, up: null },
    TypeError,
    "Cannot decode check: field 'up' must be a boolean: got null",
  ],
  [
    "a null interval",
    { ...valid, interval_ms: null },
    TypeError,
    "Cannot decode check: field 'interval_ms' must be a number: got null",
  ],
  [
    "a zero interval",
    { ...valid, interval_ms: 0 },
    RangeError,
    "Cannot decode check: field 'interval_ms' must be between 1 and 86400000: got 0",
  ],
  [
    "a fractional interval",
    { ...valid, interval_ms: 1500.5 },
    TypeError,
    "Cannot decode check: field 'interval_ms' must be an integer: got number 1500.5",
  ],
];

for (const [what, value, ErrorClass, message] of bad) {
  Deno.test(`decodeCheck() rejects ${what} with ${ErrorClass.name}`, () => {
    const error = assertThrows(() => decodeCheck(bytes(value)), ErrorClass);
    if (message.endsWith(": ")) assertMatch(error.message, new RegExp(`^${message}`));
    else assertEquals(error.message, message);
  });
}

Deno.test("decodeCheck() rejects a missing value, bad UTF-8 and an oversized value", () => {
  assertThrows(() => decodeCheck(null), TypeError, "Cannot decode check: the message has no value");
  assertThrows(
    () => decodeCheck(new Uint8Array([0x7b, 0xc3, 0x28, 0x7d])),
    TypeError,
    "Cannot decode check: the value is not valid UTF-8",
  );
  assertThrows(
    () => decodeCheck(new Uint8Array(64 * 1024 + 1)),
    RangeError,
    "Cannot decode check: the value is 65537 bytes, over the limit of 65536",
  );
});

Deno.test("decodeCheck() reads millisecond timestamps digit by digit exactly as the full RFC 3339 check does", () => {
  const accepted = [
    "1970-01-01T00:00:00.000Z",
    "2028-02-29T23:59:59.999Z",
    "2026-12-31T12:30:45.123Z",
    "2000-02-29T00:00:00.000Z",
    "9998-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.000Z",
  ];
  const refused = [
    "1969-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.999Z",
    "2027-02-29T00:00:00.000Z",
    "1900-02-29T00:00:00.000Z",
    "2026-04-31T00:00:00.000Z",
    "2026-13-01T00:00:00.000Z",
    "2026-00-10T00:00:00.000Z",
    "2026-01-00T00:00:00.000Z",
    "2026-01-01T24:00:00.000Z",
    "2026-01-01T23:60:00.000Z",
    "2026-01-01T23:59:60.000Z",
    "2026-01-01T00:00:00.00aZ",
    "2026-01-01 00:00:00.000Z",
    "2026-01-01T00:00:00.000z",
    "2026-01-01T00:00:00,000Z",
    "20261-01-01T00:00:00.00Z",
  ];
  for (const time of accepted) {
    assertEquals(decodeCheck(encodeCheck({ ...valid, started_at: time })).started_at, time);
  }
  for (const time of refused) {
    const error = assertThrows(() => decodeCheck(encodeCheck({ ...valid, started_at: time })), RangeError);
    assertMatch(error.message, /^Cannot decode check: field 'started_at' must be (an RFC 3339|between 1970)/);
    assertEquals(error.message.endsWith(`got '${time}'`), true, error.message);
  }
});

Deno.test("decodeCheck() checks a URL it has accepted before just as well as a new one", () => {
  for (let round = 0; round < 2; round++) {
    assertEquals(decodeCheck(encodeCheck(valid)).url, valid.url);
    assertThrows(
      () => decodeCheck(encodeCheck({ ...valid, url: "ftp://shop.example.com/" })),
      RangeError,
      "Cannot decode check: field 'url' must be an http or https URL: got 'ftp://shop.example.com/'",
    );
  }
});
