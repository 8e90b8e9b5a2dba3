import postgres from "postgres";
import { assertEquals, assertRejects } from "./_assert.ts";
import { DatabaseHandle, DeadlineError } from "../src/db/handle.ts";
import { isTransient } from "../src/db/retry.ts";
import { createTestDatabase, type TestDatabase } from "./_pg.ts";

async function withHandle(
  fn: (db: DatabaseHandle, opened: { count: number }) => Promise<void>,
): Promise<void> {
  const test: TestDatabase = await createTestDatabase("monitor_handle");
  const opened = { count: 0 };
  const open = () => {
    opened.count++;
    return Promise.resolve(postgres(test.url, { max: 2, onnotice: () => {} }));
  };
  const db = new DatabaseHandle(open, await open());
  opened.count = 0;
  try {
    await fn(db, opened);
  } finally {
    await db.end(1);
    await test.drop();
  }
}

Deno.test("DatabaseHandle.run() returns the call's result within the deadline and keeps the pool", async () => {
  await withHandle(async (db, opened) => {
    const before = db.sql;
    const [row] = await db.run("add", (sql) => sql`select 1 + 1 as n`, 5_000);
    assertEquals(row?.n, 2);
    assertEquals([db.sql === before, opened.count], [true, 0]);
  });
});

Deno.test("DatabaseHandle.run() passes the call's own error on and keeps the pool", async () => {
  await withHandle(async (db, opened) => {
    const before = db.sql;
    const error = await assertRejects(
      () => db.run("read", (sql) => sql`select * from no_such_table`, 5_000),
      Error,
      'relation "no_such_table" does not exist',
    );
    assertEquals((error as { code?: string }).code, "42P01");
    assertEquals([db.sql === before, opened.count], [true, 0]);
  });
});

Deno.test("DatabaseHandle.run() past its deadline rejects with DeadlineError and replaces the pool", async () => {
  await withHandle(async (db, opened) => {
    const before = db.sql;
    const start = performance.now();
    const error = await assertRejects(
      () => db.run("wait", (sql) => sql`select pg_sleep(10)`, 200),
      DeadlineError,
      "Cannot wait: no answer from the database within 200 ms",
    );
    const took = performance.now() - start;
    assertEquals(took < 5_000, true, `took ${took} ms`);
    assertEquals([error.name, (error as DeadlineError).code, isTransient(error)], [
      "DeadlineError",
      "CLIENT_DEADLINE",
      true,
    ]);
    assertEquals([db.sql !== before, opened.count], [true, 1]);
    // The fresh pool works.
    const [row] = await db.run("count", (sql) => sql`select 3 as n`, 5_000);
    assertEquals(row?.n, 3);
  });
});

Deno.test("DatabaseHandle.run() past its deadline lets the other calls on the old pool finish", async () => {
  await withHandle(async (db, opened) => {
    const before = db.sql;
    // Two statements, the second sent after the pool was replaced: it must still run on the old pool.
    const other = db.run("read twice", async (sql) => {
      await sql`select pg_sleep(0.6)`;
      const [row] = await sql`select 7 as n`;
      return row?.n;
    }, 5_000);
    await assertRejects(() => db.run("wait", (sql) => sql`select pg_sleep(3)`, 300), DeadlineError);
    assertEquals([db.sql !== before, opened.count], [true, 1]);
    assertEquals(await other, 7);
  });
});

Deno.test("DatabaseHandle.run() ends a replaced pool once its calls have settled", async () => {
  await withHandle(async (db) => {
    const before = db.sql;
    const backends = async () => {
      const [row] = await db.sql`select count(*)::int4 as n from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()`;
      return row!.n as number;
    };
    const other = db.run("read", (sql) => sql`select pg_sleep(0.5)`, 5_000);
    await assertRejects(() => db.run("wait", (sql) => sql`select pg_sleep(1.5)`, 200), DeadlineError);
    await other;
    // The old pool's late query ends within its grace; then only the new pool's connection is left.
    let count = -1;
    for (let i = 0; i < 50 && count !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      count = await backends();
    }
    assertEquals(count, 0);
    const ended = await assertRejects(() => before`select 1`, Error);
    assertEquals((ended as { code?: string }).code, "CONNECTION_ENDED");
  });
});
