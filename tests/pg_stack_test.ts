import { assertEquals } from "./_assert.ts";
import postgres from "postgres";
import { createTestDatabase, startPrivatePostgres } from "./_pg.ts";

Deno.test("postgres.js round-trips a row through a fresh database on the shared server", async () => {
  const db = await createTestDatabase();
  try {
    await db.sql`create table t (id int primary key, name text not null)`;
    await db.sql`insert into t ${db.sql([{ id: 1, name: "héllo" }], "id", "name")}`;
    const rows = await db.sql<{ id: number; name: string }[]>`select id, name from t`;
    assertEquals(rows.map((r) => ({ ...r })), [{ id: 1, name: "héllo" }]);
  } finally {
    await db.drop();
  }
});

Deno.test("postgres.js reaches a private TLS instance with verify-full and refuses a wrong CA", async () => {
  const pg = await startPrivatePostgres({ tls: true });
  try {
    const ca = await Deno.readTextFile(pg.caFile!);
    const good = postgres(`postgres://postgres@localhost:${pg.port}/postgres`, {
      ssl: { ca, rejectUnauthorized: true },
      max: 1,
      onnotice: () => {},
    });
    const [row] = await good<{ ssl: boolean }[]>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`;
    assertEquals(row?.ssl, true);
    await good.end();

    const wrong = postgres(`postgres://postgres@localhost:${pg.port}/postgres`, {
      ssl: { ca: await Deno.readTextFile("/etc/ssl/certs/ca-certificates.crt"), rejectUnauthorized: true },
      max: 1,
      connect_timeout: 5,
      onnotice: () => {},
    });
    let refused = "";
    try {
      await wrong`select 1`;
    } catch (error) {
      refused = String((error as Error).message);
    } finally {
      await wrong.end({ timeout: 1 });
    }
    assertEquals(/certificate/i.test(refused), true, `expected a certificate error, got: ${refused}`);
  } finally {
    await pg.destroy();
  }
});
