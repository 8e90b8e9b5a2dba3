import postgres from "postgres";
import { assertEquals, assertRejects } from "./_assert.ts";
import { all } from "../src/db/_pipeline.ts";
import { transaction } from "../src/db/_transaction.ts";
import { delay } from "../src/async.ts";
import { createTestDatabase, type TestDatabase } from "./_pg.ts";

const PROBE = new URL("./_retention_probe.ts", import.meta.url).pathname;

async function withDatabase(fn: (db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase("monitor_transaction");
  try {
    await db.sql`create table notes (n int4 not null)`;
    await fn(db);
  } finally {
    await db.drop();
  }
}

Deno.test("transaction() commits and returns the function's result", async () => {
  await withDatabase(async (db) => {
    const result = await transaction(db.sql, async (tx) => {
      await tx`insert into notes values (1), (2)`;
      return "stored";
    });
    assertEquals(result, "stored");
    const [row] = await db.sql`select count(*)::int as n from notes`;
    assertEquals(row?.n, 2);
  });
});

Deno.test("transaction() rolls back and passes the function's own error on", async () => {
  await withDatabase(async (db) => {
    const error = await assertRejects(
      () =>
        transaction(db.sql, async (tx) => {
          await tx`insert into notes values (1)`;
          await tx`select * from no_such_table`;
        }),
      Error,
      'relation "no_such_table" does not exist',
    );
    assertEquals((error as { code?: string }).code, "42P01");
    const [row] = await db.sql`select count(*)::int as n from notes`;
    assertEquals(row?.n, 0);
  });
});

Deno.test(
  "transaction() whose connection is terminated mid-statement rejects with CONNECTION_CLOSED and the process and pool survive",
  async () => {
    await withDatabase(async (db) => {
      // Before the fix, postgres.js sent ROLLBACK on the closed connection and threw from a timer
      // ("Cannot read properties of null (reading 'write')"), which fails this test as an uncaught error.
      // One connection, so the statements after the kill run on the reconnected one.
      const sql = postgres(db.url, { max: 1, onnotice: () => {} });
      const target = new URL(db.url);
      const address = `${target.hostname}:${target.port || 5432}`;
      try {
        for (let round = 0; round < 3; round++) {
          const { promise: started, resolve } = Promise.withResolvers<number>();
          const running = transaction(sql, async (tx) => {
            const [row] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
            resolve(row!.pid);
            // Pipelined like the writer's statements.
            await all([
              tx`insert into notes values (1)`,
              tx`select pg_sleep(10)`,
              tx`insert into notes values (2)`,
            ]);
          });
          // Handled from the start: on a busy machine the transaction can fail (the killed connection closes)
          // before pg_terminate_backend's own reply arrives, and a rejection left without a handler until then
          // fails the test run as an uncaught error. assertRejects() below still sees it.
          running.catch(() => {});
          const pid = await started;
          const [killed] = await db.sql`select pg_terminate_backend(${pid}) as ok`;
          assertEquals(killed?.ok, true);
          const error = await assertRejects(() => running, Error, `write CONNECTION_CLOSED ${address}`);
          assertEquals((error as { code?: string }).code, "CONNECTION_CLOSED");
          await delay(100); // the timers a crash would come from have run by now
          // postgres.js keeps the server's FATAL error of the closed connection and fails the first statement of
          // the reconnected one with it (unsent); callers retry it as a transient error (src/db/retry.ts).
          const stale = await assertRejects(
            () => sql`select 1`.then(() => {}),
            Error,
            "terminating connection due to administrator command",
          );
          assertEquals((stale as { code?: string }).code, "57P01");
          const [row] = await sql`select count(*)::int as n from notes`;
          assertEquals(row?.n, 0);
        }
      } finally {
        await sql.end({ timeout: 1 });
      }
    });
  },
);

Deno.test("transaction() leaves nothing of the caller's scope to postgres.js once it ends", async () => {
  await withDatabase(async (db) => {
    const probe = async (how: "wrapped" | "direct") => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net",
          "--allow-env",
          "--allow-read",
          "--v8-flags=--expose-gc",
          PROBE,
          db.url,
          how,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
      return new TextDecoder().decode(output.stdout).trim();
    };
    // postgres.js keeps an Error of each statement text's first run, and with it the caller's scope...
    assertEquals(await probe("direct"), "kept");
    // ...which transaction() keeps out of its reach.
    assertEquals(await probe("wrapped"), "released");
  });
});
