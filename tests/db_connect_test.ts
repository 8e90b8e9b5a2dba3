import { assertEquals, assertRejects } from "./_assert.ts";
import { ADMIN_URL, createTestDatabase, startPrivatePostgres } from "./_pg.ts";
import { connectDatabase, redactUrl } from "../src/db/connect.ts";
import { createLogger, silentLogger as log } from "../src/log.ts";
import { delay } from "../src/async.ts";

Deno.test("redactUrl() hides the password and nothing else", () => {
  assertEquals(
    redactUrl("postgres://monitor:s3cret@db.example:5432/monitor?sslmode=verify-full"),
    "postgres://monitor:***@db.example:5432/monitor?sslmode=verify-full",
  );
  assertEquals(redactUrl("postgres://monitor@db/monitor"), "postgres://monitor@db/monitor");
  assertEquals(redactUrl("postgres://u:p%40ss@h1:5432,h2:5432/db"), "postgres://***@h1:5432,h2:5432/db");
});

Deno.test("redactUrl() hides a password in the query string too, in any letter case", () => {
  assertEquals(
    redactUrl("postgres://db.example/monitor?user=monitor&password=s3cret&sslmode=require"),
    "postgres://db.example/monitor?user=monitor&password=***&sslmode=require",
  );
  assertEquals(
    redactUrl("postgres://monitor:a@db/m?sslpassword=k3y&PASSWORD=b"),
    "postgres://monitor:***@db/m?sslpassword=***&PASSWORD=***",
  );
  assertEquals(
    redactUrl("postgres://h1:5432,h2:5432/db?password=s3cret&user=u"),
    "postgres://h1:5432,h2:5432/db?password=***&user=u",
  );
});

Deno.test("connectDatabase() rejects a URL it cannot use before connecting", async () => {
  await assertRejects(
    () => connectDatabase({ url: "mysql://root:pw@db/monitor", log }),
    TypeError,
    "Cannot connect to the database: the URL must start with postgres:// or postgresql://: got 'mysql://'",
  );
  await assertRejects(
    () => connectDatabase({ url: "postgres://u:pw@db/monitor?sslmode=strict", log }),
    RangeError,
    "Cannot connect to the database: sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full: got 'strict'",
  );
  await assertRejects(
    () => connectDatabase({ url: "postgres://u:pw@db:port/monitor", log }),
    TypeError,
    "Cannot connect to the database: the URL is not valid: postgres://***@db:port/monitor",
  );
});

Deno.test("connectDatabase() connects without TLS and never logs the password", async () => {
  const lines: string[] = [];
  const url = new URL(ADMIN_URL);
  url.password = "s3cret";
  url.search = "sslmode=disable";
  const sql = await connectDatabase({
    url: url.toString(),
    log: createLogger({ format: "json", write: (line) => lines.push(line) }),
  });
  try {
    const [row] = await sql<{ ssl: boolean | null; name: string }[]>`
      select (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as ssl, current_setting('application_name') as name`;
    assertEquals(row, { ssl: false, name: "monitor" });
  } finally {
    await sql.end();
  }
  assertEquals(lines.length, 1);
  const { message, url: logged, sslmode } = JSON.parse(lines[0]!);
  url.password = "***";
  assertEquals({ message, logged, sslmode }, {
    message: "connecting to the database",
    logged: url.toString(),
    sslmode: "disable",
  });
});

Deno.test("connectDatabase() rejects queries with the socket error when nothing listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const sql = await connectDatabase({
    url: `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    log,
  });
  try {
    const error = await assertRejects(() => sql`select 1`, Error);
    assertEquals((error as Error & { code?: string }).code, "ECONNREFUSED");
  } finally {
    await sql.end({ timeout: 1 });
  }
});

Deno.test("connectDatabase() honours sslmode against a TLS server", async () => {
  const pg = await startPrivatePostgres({ tls: true });
  const ssl = async (url: string, caFile: string | null = null) => {
    const sql = await connectDatabase({ url, caFile, log, connectTimeoutSeconds: 5 });
    try {
      const [row] = await sql<{ ssl: boolean }[]>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`;
      return row?.ssl;
    } finally {
      await sql.end({ timeout: 1 });
    }
  };
  const refused = async (url: string, caFile: string | null = null) => {
    try {
      await ssl(url, caFile);
      return "connected";
    } catch (error) {
      return /certificate|altname|Hostname/i.test(String(error)) ? "certificate refused" : String(error);
    }
  };
  try {
    const base = `postgres://postgres@localhost:${pg.port}/postgres`;
    assertEquals(await ssl(`${base}?sslmode=disable`), false);
    assertEquals(await ssl(base), true); // libpq's default, prefer
    assertEquals(await ssl(`${base}?sslmode=require`), true);
    assertEquals(await ssl(`${base}?sslmode=verify-full`, pg.caFile), true);
    assertEquals(await ssl(base, pg.caFile), true); // a CA file alone means verify-full
    assertEquals(
      await ssl(`${base}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.caFile!)}`),
      true,
    );
    assertEquals(await refused(`${base}?sslmode=verify-full`), "certificate refused"); // system store
    assertEquals(await refused(`${base}?sslmode=verify-ca`), "certificate refused");
    assertEquals(await refused(`${base}?sslrootcert=system`), "certificate refused"); // libpq: verify-full
    // A host name the certificate does not list: verify-full refuses it, verify-ca does not check it.
    const alias = Deno.hostname();
    const reachable = await Deno.connect({ hostname: alias, port: pg.port }).then(
      (c) => (c.close(), true),
      () => false,
    );
    if (reachable && alias !== "localhost") {
      const other = `postgres://postgres@${alias}:${pg.port}/postgres`;
      assertEquals(await refused(`${other}?sslmode=verify-full`, pg.caFile), "certificate refused");
      assertEquals(await ssl(`${other}?sslmode=verify-ca`, pg.caFile), true);
    }
  } finally {
    await pg.destroy();
  }
});

/**
 * A TCP relay to PostgreSQL whose first connection passes the client's startup message and drops everything the
 * client sends after it, so that connection's first statement waits on an idle backend; later connections
 * pass everything.
 */
function startHoldingRelay(target: URL) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Deno.Conn[] = [];
  const serve = async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port || 5432) });
      const hold = open.length === 0;
      open.push(client, server);
      server.readable.pipeTo(client.writable).catch(() => {});
      (async () => {
        let startup = true;
        for await (const chunk of client.readable) {
          if (hold && !startup) continue;
          startup = false;
          await server.write(chunk);
        }
      })().catch(() => {});
    }
  };
  const serving = serve().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed by its peer already */ }
      }
      await serving;
    },
  };
}

Deno.test(
  "connectDatabase(): a connection killed before its first statement runs fails that statement, and the process and pool survive",
  async () => {
    // postgres.js reads array types on each new connection unless told not to, in a query it does not await:
    // killed during it, the connection rejected that query's promise unhandled and ended the process.
    const db = await createTestDatabase("monitor_connect");
    const relay = startHoldingRelay(new URL(db.url));
    const url = new URL(db.url);
    url.hostname = "127.0.0.1";
    url.port = String(relay.port);
    url.search = "sslmode=disable";
    const sql = await connectDatabase({ url: url.toString(), log, max: 1 });
    try {
      const first = sql`select 1 as n`.then(() => "stored", (error) => error.code);
      let pid: number | null = null;
      for (let i = 0; i < 100 && pid === null; i++) {
        const [row] = await db.sql<{ pid: number }[]>`
          select pid from pg_stat_activity where datname = ${db.name} and application_name = 'monitor'`;
        pid = row?.pid ?? null;
        if (pid === null) await delay(50);
      }
      assertEquals(typeof pid, "number");
      const [killed] = await db.sql`select pg_terminate_backend(${pid}) as ok`;
      assertEquals(killed?.ok, true);
      assertEquals(await first, "CONNECTION_CLOSED");
      // postgres.js keeps the server's FATAL error of the closed connection and fails the first statement of the
      // reconnected one with it (unsent); callers retry it as a transient error (src/db/retry.ts).
      const stale = await sql`select 2 as n`.then(() => "stored", (error) => error.code);
      assertEquals(stale, "57P01");
      await delay(100); // a crash would come from a promise rejected by then
      const [row] = await sql`select 3 as n`;
      assertEquals(row?.n, 3);
    } finally {
      await sql.end({ timeout: 1 });
      await relay.close();
      await db.drop();
    }
  },
);
