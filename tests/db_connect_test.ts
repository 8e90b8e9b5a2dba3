import { assertEquals, assertRejects } from "./_assert.ts";
import { ADMIN_URL, startPrivatePostgres } from "./_pg.ts";
import { connectDatabase, redactUrl } from "../src/db/connect.ts";
import { createLogger, silentLogger as log } from "../src/log.ts";

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
