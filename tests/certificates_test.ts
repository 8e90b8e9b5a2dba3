import { assertEquals, assertThrows } from "./_assert.ts";
import { CertificateCache } from "../src/check/certificates.ts";
import { selfSigned } from "./_tls.ts";

/** A TLS server that counts the connections it accepts and sends nothing but its handshake. */
async function withTlsServer(
  certificate: { cert: string; key: string },
  fn: (port: number, connections: () => number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listenTls({ port: 0, hostname: "127.0.0.1", ...certificate });
  let count = 0;
  const handled: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      count++;
      handled.push((async () => {
        try {
          await conn.handshake();
          await conn.read(new Uint8Array(1024)); // until the client hangs up
        } catch {
          /* the client went away mid-handshake */
        } finally {
          conn.close();
        }
      })());
    }
  })();
  try {
    await fn((listener.addr as Deno.NetAddr).port, () => count);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Promise.allSettled(handled);
  }
}

Deno.test("CertificateCache: reports the leaf certificate's notAfter once a refresh has finished", async () => {
  const certificate = await selfSigned(30);
  await withTlsServer(certificate, async (port) => {
    const cache = new CertificateCache({ timeoutMs: 1000 });
    try {
      const url = new URL(`https://localhost:${port}/some/path`);
      assertEquals(cache.expiryFor(url), null);
      await cache.settled();
      assertEquals(cache.expiryFor(url), certificate.expiresAt);
      // Same host and port, another path: the same entry.
      assertEquals(cache.expiryFor(new URL(`https://localhost:${port}/`)), certificate.expiresAt);
    } finally {
      await cache.close();
    }
  });
});

Deno.test("CertificateCache: makes at most one handshake per host:port within the TTL", async () => {
  await withTlsServer(await selfSigned(30), async (port, connections) => {
    const cache = new CertificateCache({ timeoutMs: 1000 });
    try {
      const url = new URL(`https://127.0.0.1:${port}/`);
      for (let i = 0; i < 5; i++) cache.expiryFor(url);
      await cache.settled();
      for (let i = 0; i < 5; i++) cache.expiryFor(url);
      await cache.settled();
      assertEquals(connections(), 1);
    } finally {
      await cache.close();
    }
  });
});

Deno.test("CertificateCache: refreshes a value older than the TTL", async () => {
  await withTlsServer(await selfSigned(30), async (port, connections) => {
    const cache = new CertificateCache({ ttlMs: 0, timeoutMs: 1000 });
    try {
      const url = new URL(`https://127.0.0.1:${port}/`);
      cache.expiryFor(url);
      await cache.settled();
      cache.expiryFor(url);
      await cache.settled();
      assertEquals(connections(), 2);
    } finally {
      await cache.close();
    }
  });
});

Deno.test("CertificateCache: keeps the previous value when a refresh fails", async () => {
  const certificate = await selfSigned(30);
  const cache = new CertificateCache({ ttlMs: 0, timeoutMs: 1000 });
  try {
    let url = new URL("https://127.0.0.1/");
    await withTlsServer(certificate, async (port) => {
      url = new URL(`https://127.0.0.1:${port}/`);
      cache.expiryFor(url);
      await cache.settled();
    });
    // The server is gone: this refresh is refused.
    assertEquals(cache.expiryFor(url), certificate.expiresAt);
    await cache.settled();
    assertEquals(cache.expiryFor(url), certificate.expiresAt);
  } finally {
    await cache.close();
  }
});

Deno.test("CertificateCache: a refused connection leaves the value null without throwing", async () => {
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const cache = new CertificateCache({ timeoutMs: 1000 });
  try {
    const url = new URL(`https://127.0.0.1:${port}/`);
    assertEquals(cache.expiryFor(url), null);
    await cache.settled();
    assertEquals(cache.expiryFor(url), null);
  } finally {
    await cache.close();
  }
});

/** A TCP server that accepts connections and never answers. */
async function withSilentServer(fn: (port: number) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) conns.push(conn);
  })();
  try {
    await fn((listener.addr as Deno.NetAddr).port);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of conns) conn.close();
  }
}

Deno.test("CertificateCache: gives up on a server that never answers after timeoutMs", async () => {
  await withSilentServer(async (port) => {
    const cache = new CertificateCache({ timeoutMs: 200 });
    try {
      const url = new URL(`https://127.0.0.1:${port}/`);
      const start = performance.now();
      cache.expiryFor(url);
      await cache.settled();
      const elapsed = performance.now() - start;
      assertEquals([elapsed >= 150, elapsed < 1000], [true, true], `took ${elapsed} ms`);
      assertEquals(cache.expiryFor(url), null);
    } finally {
      await cache.close();
    }
  });
});

Deno.test("CertificateCache: close() ends a refresh in flight at once and starts no more", async () => {
  await withSilentServer(async (port) => {
    const cache = new CertificateCache({ timeoutMs: 5000 });
    const url = new URL(`https://127.0.0.1:${port}/`);
    cache.expiryFor(url);
    const start = performance.now();
    await cache.close();
    const elapsed = performance.now() - start;
    assertEquals(elapsed < 500, true, `took ${elapsed} ms`);
    assertEquals(cache.expiryFor(url), null);
    await cache.settled(); // nothing new was started
  });
});

Deno.test("CertificateCache: has no value for http URLs", () => {
  const cache = new CertificateCache();
  assertEquals(cache.expiryFor(new URL("http://127.0.0.1:1/")), null);
});

Deno.test("CertificateCache: rejects a non-positive timeout and a negative TTL", () => {
  assertThrows(
    () => new CertificateCache({ timeoutMs: 0 }),
    RangeError,
    "Cannot create certificate cache as 'timeoutMs' must be positive: got 0",
  );
  assertThrows(
    () => new CertificateCache({ ttlMs: -1 }),
    RangeError,
    "Cannot create certificate cache as 'ttlMs' must be >= 0: got -1",
  );
});
