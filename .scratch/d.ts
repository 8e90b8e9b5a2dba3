import { createTestDatabase } from "../tests/_pg.ts";
const db = await createTestDatabase();
try {
  await db.sql`create table t (x timestamptz)`;
  await db.sql`insert into t values ('2026-11-22T23:59:59.999999Z')`;
  console.log(await db.sql`select x, x::text from t`);
  console.log(await db.sql`select count(*) from t where x = ${"2026-11-22T23:59:59.999999Z"}`);
  console.log(await db.sql`select count(*) from t where x = ${"2026-11-22T23:59:59.999999Z"}::timestamptz`);
} finally { await db.drop(); }
