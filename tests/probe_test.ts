import { selfSigned } from "./_tls.ts";
import { assert_, assertEquals, assertMatch } from "./_assert.ts";
import { CertificateCache } from "../src/check/certificates.ts";
import { decodeCheck, encodeCheck, type ErrorKind } from "../src/message.ts";
import { createProbeClient, probe, type ProbeContext } from "../src/check/probe.ts";
import type { Site } from "../src/check/site.ts";
import { makeSite } from "./_sites.ts";
import { VERSION } from "../src/version.ts";
import { delay } from "../src/async.ts";

const encoder = new TextEncoder();
// assert_.ok itself cannot be called as an assertion function: its export has no explicit type.
const assertTrue: (condition: boolean, message?: string) => void = assert_.ok;
const MIB = 1024 * 1024;

/** A body that sends one byte every 50 ms until the client goes away (or 5 s pass). */
function drip(signal: AbortSignal): ReadableStream<Uint8Array> {
  let timer: ReturnType<typeof setInterval> | undefined;
  let sent = 0;
  return new ReadableStream({
    start(controller) {
      const stop = () => {
        clearInterval(timer);
        signal.removeEventListener("abort", stop);
        try {
          controller.close();
        } catch { /* already cancelled */ }
      };
      signal.addEventListener("abort", stop, { once: true });
      controller.enqueue(encoder.encode("x"));
      timer = setInterval(() => {
        if (++sent >= 100) return stop();
        controller.enqueue(encoder.encode("x"));
      }, 50);
    },
    cancel() {
      clearInterval(timer);
    },
  });
}

interface Received {
  method: string;
  path: string;
  body: string;
  headers: Headers;
}

/** The test server's routes; `received` records every request. */
function routes(
  received: Received[],
  bigBodySent: { bytes: number },
  closing: AbortSignal,
): Deno.ServeHandler {
  return async (request) => {
    const url = new URL(request.url);
    const path = url.pathname;
    received.push({ method: request.method, path, body: await request.text(), headers: request.headers });
    const hop = /^\/hop\/(\d+)$/.exec(path);
    if (hop) {
      const left = Number(hop[1]);
      return left === 0
        ? new Response("arrived")
        : new Response(null, { status: 302, headers: { location: `/hop/${left - 1}` } });
    }
    switch (path) {
      case "/ok":
        return new Response("<h1>Welcome to monitor</h1>");
      case "/500":
        return new Response("boom", { status: 500 });
      case "/404":
        return new Response("not here", { status: 404 });
      case "/slow-headers":
        // Deno.serve's `request.signal` also aborts once a response is sent, so the harness has its own signal.
        await delay(1500, { signal: closing }).catch(() => {});
        return new Response("late");
      case "/drip":
        return new Response(drip(closing));
      case "/drip-announced":
        // Its length announced, the body is read into a buffer of that length, and what came is counted.
        return new Response(drip(closing), { headers: { "content-length": "100" } });
      case "/big": {
        const total = 50 * MIB;
        return new Response(
          new ReadableStream({
            pull(controller) {
              if (bigBodySent.bytes >= total) return controller.close();
              controller.enqueue(new Uint8Array(64 * 1024).fill(0x61));
              bigBodySent.bytes += 64 * 1024;
            },
          }),
        );
      }
      case "/binary":
        return new Response(Uint8Array.from({ length: 1024 }, (_, i) => i % 256), {
          headers: { "content-type": "application/octet-stream" },
        });
      case "/latin1":
        // "café crème" in ISO-8859-1: 0xE9 and 0xE8 are not valid UTF-8 here.
        return new Response(Uint8Array.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x63, 0x72, 0xe8, 0x6d, 0x65]));
      case "/loop/a":
        return new Response(null, { status: 302, headers: { location: "/loop/b" } });
      case "/loop/b":
        return new Response(null, { status: 307, headers: { location: "/loop/a" } });
      case "/moved":
        return new Response(null, { status: 301, headers: { location: "/ok" } });
      case "/see-other":
        return new Response(null, { status: 303, headers: { location: "/echo" } });
      case "/temporary":
        return new Response(null, { status: 307, headers: { location: "/echo" } });
      case "/echo":
        return new Response("echoed");
      case "/to-ftp":
        return new Response(null, { status: 302, headers: { location: "ftp://127.0.0.1/file" } });
      case "/redirect-to-slow":
        return new Response(null, { status: 302, headers: { location: "/slow-headers" } });
      default:
        return new Response("no such route", { status: 404 });
    }
  };
}

interface Harness {
  readonly base: string;
  readonly received: Received[];
  readonly bigBodySent: { bytes: number };
  readonly context: ProbeContext;
}

/** Runs `fn` against a fresh routes server, client and certificate cache, and closes all three. */
async function withHarness(fn: (harness: Harness) => Promise<void>): Promise<void> {
  const received: Received[] = [];
  const bigBodySent = { bytes: 0 };
  const closing = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    routes(received, bigBodySent, closing.signal),
  );
  const client = createProbeClient();
  const certificates = new CertificateCache({ timeoutMs: 1000 });
  const context = { agent: "test-agent", region: "loopback", scheduledAt: Date.now(), client, certificates };
  try {
    await fn({ base: `http://127.0.0.1:${server.addr.port}`, received, bigBodySent, context });
  } finally {
    client.close();
    await certificates.close();
    closing.abort();
    await server.shutdown();
  }
}

/** Probes and checks that the result is a valid wire message before returning it. */
async function probeValid(site: Site, context: ProbeContext) {
  const result = await probe(site, context);
  assertEquals(decodeCheck(encodeCheck(result)), result);
  assertEquals(result.up, result.error === null);
  if (result.ttfb_ms !== null) assertTrue(result.ttfb_ms <= result.duration_ms, "ttfb after duration");
  return result;
}

interface Row {
  readonly name: string;
  readonly path: string;
  readonly site?: Partial<Site>;
  readonly up: boolean;
  readonly status: number | null;
  readonly kind: ErrorKind | null;
  readonly bytes?: number | null;
  readonly regexMatched?: boolean | null;
  readonly message?: string | RegExp;
}

const ROWS: readonly Row[] = [
  {
    name: "a 200 whose body matches the pattern is up",
    path: "/ok",
    site: { regex: /Welcome to \w+/ },
    up: true,
    status: 200,
    kind: null,
    bytes: 27,
    regexMatched: true,
  },
  {
    name: "a 200 whose body lacks the pattern is down with kind content",
    path: "/ok",
    site: { regex: /Goodbye/ },
    up: false,
    status: 200,
    kind: "content",
    bytes: 27,
    regexMatched: false,
    message: "Body does not match /Goodbye/",
  },
  {
    name: "a 500 is down with kind http",
    path: "/500",
    up: false,
    status: 500,
    kind: "http",
    bytes: 4,
    regexMatched: null,
    message: "Status 500 is not in 200-399",
  },
  {
    name: "a 404 is up when expect_status allows 404",
    path: "/404",
    site: { expectStatus: [{ min: 200, max: 299 }, { min: 404, max: 404 }] },
    up: true,
    status: 404,
    kind: null,
    bytes: 8,
  },
  {
    name: "a 404 names every accepted range when not allowed",
    path: "/404",
    site: { expectStatus: [{ min: 200, max: 299 }, { min: 410, max: 410 }] },
    up: false,
    status: 404,
    kind: "http",
    message: "Status 404 is not in 200-299, 410",
  },
  {
    name: "headers later than the deadline give kind timeout and no status",
    path: "/slow-headers",
    site: { timeoutMs: 300 },
    up: false,
    status: null,
    kind: "timeout",
    bytes: null,
    message: "Timed out after 300 ms: no response headers yet",
  },
  {
    name: "a body dripping past the deadline gives kind timeout and keeps status 200",
    path: "/drip",
    site: { timeoutMs: 300, regex: /x/ },
    up: false,
    status: 200,
    kind: "timeout",
    regexMatched: null,
    message: /^Timed out after 300 ms: reading the body, \d+ bytes read$/,
  },
  {
    name: "a body of announced length stalling past the deadline gives kind timeout and keeps status 200",
    path: "/drip-announced",
    site: { timeoutMs: 300 },
    up: false,
    status: 200,
    kind: "timeout",
    message: /^Timed out after 300 ms: reading the body, [1-9]\d? bytes read$/,
  },
  {
    name: "a 50 MiB body is read only up to maxBodyBytes",
    path: "/big",
    site: { regex: /a{100}/ },
    up: true,
    status: 200,
    kind: null,
    bytes: MIB,
    regexMatched: true,
  },
  {
    name: "a pattern missing from a capped body says how much was searched",
    path: "/big",
    site: { regex: /b/, maxBodyBytes: 1000 },
    up: false,
    status: 200,
    kind: "content",
    bytes: 1000,
    regexMatched: false,
    message: "Body does not match /b/ in its first 1000 bytes",
  },
  { name: "a binary body is counted", path: "/binary", up: true, status: 200, kind: null, bytes: 1024 },
  {
    name: "a non-UTF-8 body is decoded with replacement characters for the pattern",
    path: "/latin1",
    site: { regex: /caf\uFFFD cr\uFFFDme/ },
    up: true,
    status: 200,
    kind: null,
    bytes: 10,
    regexMatched: true,
  },
  {
    name: "a chain of 3 redirects is followed to the final status",
    path: "/hop/3",
    site: { regex: /arrived/ },
    up: true,
    status: 200,
    kind: null,
    bytes: 7,
    regexMatched: true,
  },
  { name: "10 redirects are still followed", path: "/hop/10", up: true, status: 200, kind: null, bytes: 7 },
  {
    name: "11 redirects give kind redirects",
    path: "/hop/11",
    up: false,
    status: 302,
    kind: "redirects",
    bytes: null,
    message: "Too many redirects: more than 10",
  },
  {
    name: "a redirect loop gives kind redirects",
    path: "/loop/a",
    up: false,
    status: 307,
    kind: "redirects",
    bytes: null,
    message: "Redirect loop: redirect 2 leads to a URL seen before",
  },
  {
    name: "a redirect to a scheme other than http or https gives kind redirects",
    path: "/to-ftp",
    up: false,
    status: 302,
    kind: "redirects",
    message: "Cannot follow redirect 1: it has a Location with scheme 'ftp:'",
  },
  {
    name: "a redirect is judged itself when follow_redirects is false",
    path: "/moved",
    site: { followRedirects: false },
    up: true,
    status: 301,
    kind: null,
    bytes: 0,
  },
  {
    name: "an unexpected redirect is down with kind http when follow_redirects is false",
    path: "/moved",
    site: { followRedirects: false, expectStatus: [{ min: 200, max: 299 }] },
    up: false,
    status: 301,
    kind: "http",
    message: "Status 301 is not in 200-299",
  },
  {
    name: "the deadline covers every redirect hop",
    path: "/redirect-to-slow",
    site: { timeoutMs: 300 },
    up: false,
    status: null,
    kind: "timeout",
  },
];

for (const row of ROWS) {
  Deno.test(`probe(): ${row.name}`, async () => {
    await withHarness(async ({ base, context }) => {
      const result = await probeValid(makeSite(`${base}${row.path}`, row.site), context);
      assertEquals(
        { up: result.up, status: result.status, kind: result.error?.kind ?? null },
        { up: row.up, status: row.status, kind: row.kind },
      );
      if (row.bytes !== undefined) assertEquals(result.bytes, row.bytes);
      if (row.regexMatched !== undefined) assertEquals(result.regex_matched, row.regexMatched);
      if (typeof row.message === "string") assertEquals(result.error?.message, row.message);
      else if (row.message) assertMatch(result.error?.message ?? "", row.message);
      assertEquals(result.regex, row.site?.regex?.source ?? null);
      assertEquals(result.ttfb_ms === null, row.status === null);
      assertTrue(result.duration_ms < 1900, `took ${result.duration_ms} ms`);
    });
  });
}

Deno.test("probe(): stops reading a 50 MiB body at the limit instead of downloading it", async () => {
  await withHarness(async ({ base, bigBodySent, context }) => {
    const result = await probeValid(makeSite(`${base}/big`, { maxBodyBytes: 64 * 1024 }), context);
    assertEquals(result.bytes, 64 * 1024);
    assertTrue(bigBodySent.bytes < 20 * MIB, `the server sent ${bigBodySent.bytes} bytes`);
  });
});

Deno.test("probe(): a timeout after some body keeps the bytes read so far", async () => {
  await withHarness(async ({ base, context }) => {
    const result = await probeValid(makeSite(`${base}/drip`, { timeoutMs: 400 }), context);
    assertEquals(result.error?.kind, "timeout");
    assertTrue(result.bytes !== null && result.bytes >= 1 && result.bytes <= 10, `bytes ${result.bytes}`);
    assertTrue(result.duration_ms >= 395 && result.duration_ms < 1000, `duration ${result.duration_ms}`);
    assertTrue(result.ttfb_ms !== null && result.ttfb_ms < 300, `ttfb ${result.ttfb_ms}`);
  });
});

Deno.test("probe(): sends a POST's body and headers, and the default User-Agent", async () => {
  await withHarness(async ({ base, received, context }) => {
    const site = makeSite(`${base}/echo`, {
      method: "POST",
      body: '{"ping":1}',
      headers: { "Content-Type": "application/json", "X-Token": "t0ken" },
    });
    const result = await probeValid(site, context);
    assertEquals(result.up, true);
    assertEquals(received.length, 1);
    const request = received[0]!;
    assertEquals(
      [request.method, request.path, request.body, request.headers.get("content-type")],
      ["POST", "/echo", '{"ping":1}', "application/json"],
    );
    assertEquals(request.headers.get("x-token"), "t0ken");
    assertEquals(request.headers.get("user-agent"), `monitor/${VERSION}`);
  });
});

Deno.test("probe(): keeps a User-Agent the site sets", async () => {
  await withHarness(async ({ base, received, context }) => {
    await probeValid(makeSite(`${base}/ok`, { headers: { "user-agent": "custom/9" } }), context);
    assertEquals(received[0]?.headers.get("user-agent"), "custom/9");
  });
});

Deno.test("probe(): a 303 after a POST continues as a GET without the body", async () => {
  await withHarness(async ({ base, received, context }) => {
    const site = makeSite(`${base}/see-other`, {
      method: "POST",
      body: "a=1",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-keep": "yes" },
    });
    const result = await probeValid(site, context);
    assertEquals([result.up, result.status], [true, 200]);
    const [first, second] = received;
    assertEquals([first?.method, first?.body], ["POST", "a=1"]);
    assertEquals([second?.method, second?.path, second?.body], ["GET", "/echo", ""]);
    assertEquals(second?.headers.get("content-type"), null);
    assertEquals(second?.headers.get("x-keep"), "yes");
  });
});

Deno.test("probe(): a 307 after a POST repeats the POST with its body", async () => {
  await withHarness(async ({ base, received, context }) => {
    const site = makeSite(`${base}/temporary`, { method: "POST", body: "a=1" });
    await probeValid(site, context);
    assertEquals(received.map((r) => [r.method, r.path, r.body]), [["POST", "/temporary", "a=1"], [
      "POST",
      "/echo",
      "a=1",
    ]]);
  });
});

Deno.test("probe(): a redirect to another origin drops Authorization and Cookie, keeps other headers", async () => {
  await withHarness(async ({ base, received, context }) => {
    // 127.0.0.1 and localhost are different origins on the same server.
    const port = new URL(base).port;
    const redirector = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => {
      return new Response(null, { status: 302, headers: { location: `http://localhost:${port}/echo` } });
    });
    try {
      const site = makeSite(`http://127.0.0.1:${redirector.addr.port}/`, {
        headers: { authorization: "Bearer s3cret", cookie: "session=1", "x-keep": "yes" },
      });
      const result = await probeValid(site, context);
      assertEquals([result.up, result.status], [true, 200]);
      const request = received[0];
      assertEquals(
        [request?.path, request?.headers.get("authorization"), request?.headers.get("cookie")],
        ["/echo", null, null],
      );
      assertEquals(request?.headers.get("x-keep"), "yes");
    } finally {
      await redirector.shutdown();
    }
  });
});

Deno.test("probe(): each probe opens its own connection", async () => {
  const ports = new Set<number>();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (_request, info) => {
    ports.add(info.remoteAddr.port);
    return new Response("ok");
  });
  const client = createProbeClient();
  const certificates = new CertificateCache();
  try {
    const context = { agent: "a", region: null, scheduledAt: Date.now(), client, certificates };
    for (let i = 0; i < 3; i++) await probeValid(makeSite(`http://127.0.0.1:${server.addr.port}/`), context);
    assertEquals(ports.size, 3);
  } finally {
    client.close();
    await certificates.close();
    await server.shutdown();
  }
});

Deno.test("probe(): fills in the message fields, with scheduled_at and started_at in order", async () => {
  await withHarness(async ({ base, context }) => {
    const scheduledAt = Date.now() - 250;
    const site = makeSite(`${base}/ok`, { name: "home", intervalMs: 15_000 });
    const result = await probeValid(site, { ...context, scheduledAt });
    assertEquals(
      [
        result.v,
        result.site,
        result.url,
        result.agent,
        result.region,
        result.cert_expires_at,
        result.interval_ms,
      ],
      [1, "home", `${base}/ok`, "test-agent", "loopback", null, 15_000],
    );
    assertEquals(result.scheduled_at, new Date(scheduledAt).toISOString());
    assertMatch(result.started_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assertTrue(Date.parse(result.started_at) >= Date.parse(result.scheduled_at) + 250);
    assertTrue(Date.parse(result.started_at) <= Date.now());
    assertMatch(result.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assertEquals(result.duration_ms, Math.round(result.duration_ms * 1000) / 1000);
  });
});

Deno.test("probe(): a shutdown signal ends the probe early with kind other", async () => {
  await withHarness(async ({ base, context }) => {
    const shutdown = new AbortController();
    const timer = setTimeout(() => shutdown.abort(), 100);
    const result = await probeValid(makeSite(`${base}/slow-headers`), {
      ...context,
      signal: shutdown.signal,
    });
    clearTimeout(timer);
    assertEquals(result.error, { kind: "other", message: "Probe cancelled: the agent is stopping" });
    assertTrue(result.duration_ms < 1000, `duration ${result.duration_ms}`);
  });
});

/** Runs a raw TCP server whose every connection gets `answer` once the request arrives, then is closed. */
async function withRawServer(
  answer: string | Uint8Array | null,
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const handled: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      handled.push((async () => {
        try {
          await conn.read(new Uint8Array(4096));
          const bytes = typeof answer === "string" ? encoder.encode(answer) : answer;
          for (let at = 0; bytes !== null && at < bytes.byteLength;) {
            at += await conn.write(bytes.subarray(at));
          }
        } finally {
          conn.close();
        }
      })());
    }
  })();
  try {
    await fn(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Promise.allSettled(handled);
  }
}

/** Probes `url` with a fresh client and certificate cache, closing both. */
async function probeOnce(site: Site) {
  const client = createProbeClient();
  const certificates = new CertificateCache({ timeoutMs: 1000 });
  try {
    return await probeValid(site, {
      agent: "a",
      region: null,
      scheduledAt: Date.now(),
      client,
      certificates,
    });
  } finally {
    client.close();
    await certificates.close();
  }
}

Deno.test("probe(): a connection closed mid-body gives kind connect and keeps status 200", async () => {
  const answer = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
  await withRawServer(answer, async (base) => {
    const result = await probeOnce(makeSite(`${base}/`, { regex: /0123/ }));
    assertEquals([result.up, result.status, result.error?.kind, result.regex_matched], [
      false,
      200,
      "connect",
      null,
    ]);
    assertMatch(result.error?.message ?? "", /^Reading the body from '127\.0\.0\.1:\d+' failed: /);
    assertTrue(result.bytes !== null && result.bytes <= 10, `bytes ${result.bytes}`);
  });
});

/** `head` (a status line and headers, without the blank line) then `body`, as one answer. */
function rawAnswer(head: string, body: Uint8Array): Uint8Array {
  const start = encoder.encode(`${head}\r\n\r\n`);
  const answer = new Uint8Array(start.byteLength + body.byteLength);
  answer.set(start);
  answer.set(body, start.byteLength);
  return answer;
}

async function gzip(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
}

Deno.test("probe(): a compressed body is read up to the limit of inflated bytes, whatever its Content-Length", async () => {
  // 16 MiB of zeros in about 16 KiB: the announced length is the compressed one.
  const packed = await gzip(new Uint8Array(16 * MIB));
  assertTrue(packed.byteLength < 64 * 1024, `${packed.byteLength} bytes compressed`);
  const head = `HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${packed.byteLength}`;
  await withRawServer(rawAnswer(head, packed), async (base) => {
    const result = await probeOnce(makeSite(`${base}/`, { maxBodyBytes: 64 * 1024 }));
    assertEquals([result.up, result.status, result.bytes], [true, 200, 64 * 1024]);
  });
});

Deno.test("probe(): a compressed body cut short reports the bytes inflated before the cut", async () => {
  // Text that compresses by about half, announced whole and cut after its first 20,000 compressed bytes.
  let seed = 7;
  const text = Array.from(
    { length: 100_000 },
    () => ((seed = (seed * 48271) % 2147483647) % 16).toString(16),
  );
  const packed = await gzip(encoder.encode(text.join("")));
  assertTrue(packed.byteLength < 64 * 1024, `${packed.byteLength} bytes compressed`);
  const head = `HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${packed.byteLength}`;
  await withRawServer(rawAnswer(head, packed.subarray(0, 20_000)), async (base) => {
    const result = await probeOnce(makeSite(`${base}/`));
    assertEquals([result.up, result.status, result.error?.kind], [false, 200, "connect"]);
    assertTrue(result.bytes !== null && result.bytes > 10_000, `bytes ${result.bytes}`);
  });
});

Deno.test("probe(): a status outside 100-599 is down with kind http and no status", async () => {
  await withRawServer("HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nok", async (base) => {
    const result = await probeOnce(makeSite(`${base}/`));
    assertEquals([result.up, result.status, result.error?.kind, result.error?.message], [
      false,
      null,
      "http",
      "Status 999 is not an HTTP status (100-599)",
    ]);
  });
});

Deno.test("probe(): a connection closed before the response gives kind connect", async () => {
  await withRawServer(null, async (base) => {
    const result = await probeOnce(makeSite(`${base}/`));
    assertEquals([result.up, result.status, result.bytes, result.error?.kind], [
      false,
      null,
      null,
      "connect",
    ]);
  });
});

Deno.test("probe(): a response that is not HTTP gives kind other", async () => {
  await withRawServer("SSH-2.0-OpenSSH_9.6\r\n\r\n", async (base) => {
    const result = await probeOnce(makeSite(`${base}/`));
    assertEquals([result.up, result.status, result.error?.kind], [false, null, "other"]);
    assertMatch(result.error?.message ?? "", /^Request to '127\.0\.0\.1:\d+' failed: invalid HTTP/);
  });
});

Deno.test("probe(): a refused connection gives kind connect", async () => {
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const result = await probeOnce(makeSite(`http://127.0.0.1:${port}/secret?token=hunter2`));
  assertEquals([result.up, result.status, result.bytes, result.error?.kind], [false, null, null, "connect"]);
  assertMatch(
    result.error?.message ?? "",
    new RegExp(`^Cannot connect to '127\\.0\\.0\\.1:${port}': connection refused`),
  );
  assertTrue(!result.error?.message.includes("hunter2"), "the message leaks the URL");
});

Deno.test("probe(): an unresolvable host gives kind dns", async () => {
  const result = await probeOnce(makeSite("http://does-not-exist.invalid/"));
  assertEquals([result.up, result.status, result.error?.kind], [false, null, "dns"]);
  assertMatch(result.error?.message ?? "", /^Cannot resolve host 'does-not-exist\.invalid': /);
});

Deno.test("probe(): a port fetch refuses to use gives kind connect with a clear message", async () => {
  const result = await probeOnce(makeSite("http://127.0.0.1:1/"));
  assertEquals(result.error, {
    kind: "connect",
    message: `Cannot connect to '127.0.0.1:1': fetch refuses this port (a "bad port" in the Fetch standard)`,
  });
});

Deno.test("probe(): a self-signed certificate gives kind tls, and its expiry is reported after a refresh", async () => {
  const { cert, key, expiresAt } = await selfSigned();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", cert, key, onListen() {} },
    () => new Response("ok"),
  );
  const client = createProbeClient();
  const certificates = new CertificateCache({ timeoutMs: 1000 });
  try {
    const context = { agent: "a", region: null, scheduledAt: Date.now(), client, certificates };
    const site = makeSite(`https://localhost:${server.addr.port}/`);
    const first = await probeValid(site, context);
    assertEquals([first.up, first.status, first.error?.kind], [false, null, "tls"]);
    assertMatch(
      first.error?.message ?? "",
      /^TLS handshake with 'localhost:\d+' failed: invalid peer certificate/,
    );
    await certificates.settled();
    const second = await probeValid(site, context);
    assertEquals([second.error?.kind, second.cert_expires_at], ["tls", expiresAt]);
  } finally {
    client.close();
    await certificates.close();
    await server.shutdown();
  }
});
