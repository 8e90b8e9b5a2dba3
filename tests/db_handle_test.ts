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
