import { assertEquals } from "./_assert.ts";
import { classifyFetchError, type ProbePhase } from "../src/check/probe_errors.ts";
import type { CheckError } from "../src/message.ts";

/** What Deno's fetch throws: a generic TypeError with hyper's or rustls's text in its cause. */
function fetchFailed(cause: string): TypeError {
  return new TypeError("fetch failed", { cause: new Error(cause) });
}

const CASES: readonly [string, unknown, string, ProbePhase, CheckError][] = [
  [
    "a DNS failure names the host only, never the path or query",
    fetchFailed(
      "error sending request for url (http://does-not-exist.invalid/): client error (Connect): dns error: " +
        "failed to lookup address information: Name or service not known",
    ),
    "http://does-not-exist.invalid/a?token=secret",
    "request",
    {
      kind: "dns",
      message:
        "Cannot resolve host 'does-not-exist.invalid': failed to lookup address information: Name or service not known",
    },
  ],
  [
    "an unknown certificate issuer is a TLS failure",
    fetchFailed(
      "error sending request for url (https://127.0.0.1:8443/): client error (Connect): invalid peer certificate: UnknownIssuer",
    ),
    "https://127.0.0.1:8443/",
    "request",
    {
      kind: "tls",
      message: "TLS handshake with '127.0.0.1:8443' failed: invalid peer certificate: UnknownIssuer",
    },
  ],
  [
    "a refused connection",
    fetchFailed(
      "error sending request for url (http://127.0.0.1:1234/): client error (Connect): tcp connect error: " +
        "Connection refused (os error 111)",
    ),
    "http://127.0.0.1:1234/",
    "request",
    { kind: "connect", message: "Cannot connect to '127.0.0.1:1234': connection refused (os error 111)" },
  ],
  [
    "a port fetch refuses",
    new TypeError("fetch failed", { cause: new TypeError("Requests to port 1 are blocked") }),
    "http://127.0.0.1:1/",
    "request",
    {
      kind: "connect",
      message:
        `Cannot connect to '127.0.0.1:1': fetch refuses this port (a "bad port" in the Fetch standard)`,
    },
  ],
  [
    "a reset while reading the body, with the default https port",
    fetchFailed("error reading a body from connection: connection reset"),
    "https://example.com/big",
    "body",
    {
      kind: "connect",
      message:
        "Reading the body from 'example.com:443' failed: error reading a body from connection: connection reset",
    },
  ],
  [
    "a response that is not HTTP",
    fetchFailed(
      "error sending request for url (http://127.0.0.1:9/): client error (SendRequest): invalid HTTP version parsed",
    ),
    "http://127.0.0.1:9/",
    "request",
    { kind: "other", message: "Request to '127.0.0.1:9' failed: invalid HTTP version parsed" },
  ],
  [
    "a Node-style code, without the URL's credentials",
    Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:80"), { code: "ECONNREFUSED" }),
    "http://user:pw@127.0.0.1/",
    "request",
    { kind: "connect", message: "Cannot connect to '127.0.0.1:80': connect ECONNREFUSED 127.0.0.1:80" },
  ],
  [
    "a URL inside the message is replaced",
    fetchFailed("redirect to https://user:secret@elsewhere.example/path?key=1 was refused"),
    "http://h:81/",
    "request",
    { kind: "other", message: "Request to 'h:81' failed: redirect to <url> was refused" },
  ],
  [
    "something thrown that is not an error",
    "weird string",
    "http://h:81/",
    "request",
    { kind: "other", message: "Request to 'h:81' failed: weird string" },
  ],
];

for (const [what, error, url, phase, expected] of CASES) {
  Deno.test(`classifyFetchError(): ${what}`, () => {
    assertEquals(classifyFetchError(error, new URL(url), phase), expected);
  });
}

Deno.test("classifyFetchError(): a long detail is cut to 200 characters", () => {
  const { kind, message } = classifyFetchError(fetchFailed("x".repeat(300)), new URL("http://h/"), "request");
  assertEquals(kind, "other");
  assertEquals(message, `Request to 'h:80' failed: ${"x".repeat(199)}…`);
});
