/**
 * The probe against sites whose responses are hostile to the reader: framing that lies, bodies in tiny
 * chunks, a redirect that would make the message too long for the sink, a body that is not there. Each server
 * is a raw TCP listener on loopback, so the bytes on the wire are exactly the test's.
 */
import { assert_, assertEquals } from "./_assert.ts";
import { CertificateCache } from "../src/check/certificates.ts";
import { readBody } from "../src/check/_probe_body.ts";
import { decodeCheck, encodeCheck, MAX_MESSAGE_BYTES } from "../src/message.ts";
import { createProbeClient, probe } from "../src/check/probe.ts";
import { boundedError } from "../src/check/_error_text.ts";
import { MAX_ERROR_MESSAGE_LENGTH } from "../src/message.ts";
import type { Site } from "../src/check/site.ts";
import { makeSite } from "./_sites.ts";

const assertTrue: (condition: boolean, message?: string) => void = assert_.ok;
const encoder = new TextEncoder();
const KIB = 1024;

/**
 * Probes `site` at a one-connection-at-a-time TCP server that reads a request's head, then lets `respond`
 * write to the connection (it must stop when a write fails: the client went away). Returns the published
 * result, checked to survive the wire format.
 */
async function probeRaw(
  respond: (connection: Deno.Conn) => Promise<void>,
  overrides: Partial<Site> = {},
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const connection of listener) {
      try {
        const head = new Uint8Array(16 * KIB);
        await connection.read(head);
        await respond(connection);
      } catch {
        // The client closed the connection.
      } finally {
        try {
          connection.close();
        } catch { /* already closed */ }
      }
    }
  })();
  const client = createProbeClient();
  const certificates = new CertificateCache({ timeoutMs: 1000 });
  try {
    const site = makeSite(`http://127.0.0.1:${listener.addr.port}/`, {
      timeoutMs: 3_000,
      maxBodyBytes: 64 * KIB,
      ...overrides,
    });
    const context = { agent: "test-agent", region: null, scheduledAt: Date.now(), client, certificates };
    const result = await probe(site, context);
    assertEquals(decodeCheck(encodeCheck(result)), result);
    return result;
  } finally {
    client.close();
    await certificates.close();
    listener.close();
    await serving;
  }
}

/** Writes chunked-encoding frames of `chunk` until `count` are sent or the client is gone, pausing between. */
async function writeChunks(connection: Deno.Conn, chunk: Uint8Array, count: number, pauseMs: number) {
  const frame = new Uint8Array([...encoder.encode(`${chunk.byteLength.toString(16)}\r\n`), ...chunk, 13, 10]);
  for (let i = 0; i < count; i++) {
    await connection.write(frame);
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  await connection.write(encoder.encode("0\r\n\r\n"));
}

Deno.test("probe(): a body framed by Transfer-Encoding is read to the limit, whatever Content-Length says", async () => {
  // Transfer-Encoding frames the body (RFC 9112 section 6.3): the 10 bytes announced are not its length. A
  // reader that took them for it read the endless body whole, gigabytes, until the deadline.
  const result = await probeRaw(async (connection) => {
    await connection.write(encoder.encode(
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    ));
    await writeChunks(connection, new Uint8Array(64 * KIB).fill(97), 300, 10);
  });
  assertEquals(result.error, null);
  assertEquals([result.up, result.status, result.bytes], [true, 200, 64 * KIB]);
});

Deno.test("probe(): a body sent a byte per chunk is read whole without a buffer held per chunk", async () => {
  // Deno's default stream reader gives every chunk a 64 KiB buffer of its own, of which a one-byte chunk
  // touches a page: 100,000 of them held about 400 MiB until the probe ended, and a site that kept sending held
  // gigabytes. The peak resident set is sampled while the probe runs.
  const baseline = Deno.memoryUsage().rss;
  let peak = baseline;
  const sampling = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 10);
  try {
    const result = await probeRaw(async (connection) => {
      await connection.write(encoder.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
      await writeChunks(connection, encoder.encode("x"), 100_000, 0);
    }, { timeoutMs: 30_000, maxBodyBytes: 200 * KIB, regex: /^x{100000}$/ });
    assertEquals(result.error, null);
    assertEquals([result.up, result.bytes, result.regex_matched], [true, 100_000, true]);
  } finally {
    clearInterval(sampling);
  }
  const grewMib = (peak - baseline) / 1024 / 1024;
  assertTrue(grewMib < 150, `the resident set grew by ${grewMib.toFixed(0)} MiB while reading 100,000 bytes`);
});

Deno.test("probe(): a redirect to a very long scheme gives a message the sink accepts", async () => {
  const result = await probeRaw(async (connection) => {
    await connection.write(encoder.encode(
      `HTTP/1.1 302 Found\r\nLocation: ${"a".repeat(100_000)}:x\r\nContent-Length: 0\r\n\r\n`,
    ));
  });
  assertEquals(result.error?.kind, "redirects");
  assertTrue(
    result.error!.message.length <= MAX_ERROR_MESSAGE_LENGTH,
    `${result.error!.message.length} chars`,
  );
  assertTrue(
    result.error!.message.startsWith("Cannot follow redirect 1: it has a Location with scheme 'aaa"),
  );
  assertTrue(encodeCheck(result).byteLength < MAX_MESSAGE_BYTES, "the message fits the sink's limit");
});

Deno.test("probe(): a pattern against a response without a body fails the check and matches nothing", async () => {
  const result = await probeRaw(async (connection) => {
    await connection.write(encoder.encode("HTTP/1.1 204 No Content\r\n\r\n"));
  }, { regex: /ok/ });
  assertEquals([result.up, result.status, result.regex_matched], [false, 204, null]);
  assertEquals(result.error, {
    kind: "content",
    message: "Body does not match /ok/: the response has no body",
  });
});

Deno.test("readBody(): a stream that is not a byte stream is read to the limit, chunks of any size", async () => {
  const chunks = [encoder.encode("abc"), new Uint8Array(0), encoder.encode("defghij"), encoder.encode("k")];
  const response = new Response(ReadableStream.from(chunks));
  const read = await readBody(response, 8, new AbortController().signal);
  assertEquals([read.present, read.bytes, read.capped], [true, 8, true]);
  assertEquals(new TextDecoder().decode(read.data), "abcdefgh");
  const whole = await readBody(new Response(ReadableStream.from(chunks)), 11, new AbortController().signal);
  assertEquals([whole.bytes, whole.capped, new TextDecoder().decode(whole.data)], [11, false, "abcdefghijk"]);
});

Deno.test("boundedError(): a long message is cut to the limit, never through a surrogate pair", () => {
  // "😀" is two UTF-16 code units; placed so that the cut falls between them.
  const message = `${"x".repeat(MAX_ERROR_MESSAGE_LENGTH - 2)}😀${"y".repeat(60_000)}`;
  const bounded = boundedError({ kind: "tls", message });
  assertEquals(bounded.kind, "tls");
  assertTrue(bounded.message.length <= MAX_ERROR_MESSAGE_LENGTH, `${bounded.message.length} chars`);
  assertTrue(bounded.message.isWellFormed(), "no unpaired surrogate");
  assertTrue(bounded.message.endsWith("…"), bounded.message.slice(-5));
  const short = { kind: "http" as const, message: "Status 503 is not in 200-399" };
  assertEquals(boundedError(short), short);
  assertEquals(boundedError({ kind: "other", message: "half \ud800 a pair" }).message, "half \ufffd a pair");
});

Deno.test("probe(): a body of exactly the limit is whole, not cut; an empty one is 0 bytes", async () => {
  const exact = await probeRaw(async (connection) => {
    await connection.write(
      encoder.encode(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${"a".repeat(1000)}`),
    );
  }, { maxBodyBytes: 1000, regex: /z/ });
  assertEquals([exact.bytes, exact.regex_matched], [1000, false]);
  assertEquals(exact.error, { kind: "content", message: "Body does not match /z/" });
  const longer = await probeRaw(async (connection) => {
    await connection.write(encoder.encode(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${"a".repeat(1001)}`));
  }, { maxBodyBytes: 1000, regex: /z/ });
  assertEquals(longer.error, { kind: "content", message: "Body does not match /z/ in its first 1000 bytes" });
  const empty = await probeRaw(async (connection) => {
    await connection.write(encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  });
  assertEquals([empty.up, empty.bytes, empty.error], [true, 0, null]);
});
