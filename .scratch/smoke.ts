import { createTestDatabase } from "../tests/_pg.ts";
import { migrate } from "../src/db/migrate.ts";
import { maintainPartitions } from "../src/db/partitions.ts";
import { writeBatch, readOffsets } from "../src/db/writer.ts";
import { createLogger } from "../src/log.ts";
import { newCheckId, type CheckResult } from "../src/message.ts";
const log = createLogger({ format: "text", level: "debug" });
const db = await createTestDatabase();
try {
  console.log(await migrate(db.sql, log));
  console.log(await migrate(db.sql, log));
  console.log(await maintainPartitions(db.sql, { log, aheadDays: 2 }));
  const mk = (site: string, t: string, up: boolean): CheckResult => ({ v: 1, id: newCheckId(), site, url: "https://x/"+site, agent: "a1", region: null,
    scheduled_at: t, started_at: t, up, status: up ? 200 : null, ttfb_ms: up ? 1.5 : null, duration_ms: 12.25, bytes: up ? 100 : null,
    regex: null, regex_matched: null, cert_expires_at: null, error: up ? null : { kind: "timeout", message: "timed\0 out" } });
  const now = new Date().toISOString();
  const r = await writeBatch(db.sql, { group: "g", topic: "t", checks: [
    { partition: 0, offset: "0", check: mk("a", now, true) },
    { partition: 0, offset: "1", check: mk("a", "2035-01-01T00:00:00.123456Z", false) },
    { partition: 1, offset: "5", check: mk("b", now, false) },
  ], deadLetters: [{ partition: 1, offset: "6", key: new Uint8Array([1,2]), value: new TextEncoder().encode("bad\0"), error: "oops" }],
  progress: [{ partition: 0, firstOffset: "0", nextOffset: "2" }, { partition: 1, firstOffset: "5", nextOffset: "7" }] });
  console.log(r, await readOffsets(db.sql, "g", "t"));
  console.log(await db.sql`select tableoid::regclass, * from checks`);
  console.log(await db.sql`select * from site_status`);
  console.log(await db.sql`select * from dead_letters`);
  console.log(await db.sql`select * from sites`);
} finally { await db.drop(); }
