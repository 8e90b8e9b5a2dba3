/**
 * `monitor serve` while another session holds the `sites` table locked: the pages that read it answer 503
 * within the read deadline (the server cancels their wait), /healthz answers 200 all along, serve's
 * connections do not pile up, and the pages answer again once the lock is gone.
 */
import postgres from "postgres";
import { assertEquals, assertMatch } from "./_assert.ts";
import { ADMIN_URL, createTestDatabase } from "./_pg.ts";
import { fillServeDatabase } from "./_serve_data.ts";
import { getFrom, startServe } from "./_serve.ts";
import { READ_DEADLINE_MS, READ_TIMEOUTS } from "../src/serve/command.ts";

const POOL_SIZE = 8; // src/serve/command.ts

Deno.test({
  name: "a locked table: its pages 503 within the deadline, /healthz 200, connections stay put",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const db = await createTestDatabase("monitor_serve_slow");
    await fillServeDatabase(db.sql, new Date(Math.floor(Date.now() / 60_000) * 60_000));
    const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
    const locker = postgres(db.url, { max: 1, onnotice: () => {} });
    const serve = await startServe(db.url);
    let release = () => {};
    try {
      const get = async (path: string) => {
        const start = performance.now();
        const answer = await getFrom(serve.base, path);
        return { ...answer, path, ms: performance.now() - start };
      };
      const connections = async () => {
        const [row] = await admin`select count(*)::int4 as n from pg_stat_activity
          where datname = ${db.name} and application_name = 'monitor serve'`;
        return row!.n as number;
      };
      assertEquals((await get("/api/sites/alpha")).status, 200);

      const released = new Promise<void>((resolve) => release = resolve);
      let granted = () => {};
      const locked = new Promise<void>((resolve) => granted = resolve);
      const holding = locker.begin(async (tx) => {
        await tx`lock table sites in access exclusive mode`;
        granted();
        await released;
      });
      await locked;

      // About as many statements as connections (`/` and `/api/sites` make two each), and a read that needs
      // no table, round after round, for more than two read deadlines.
      const counts: number[] = [];
      const started = performance.now();
      for (let round = 0; round < 10 && performance.now() - started < 2.5 * READ_DEADLINE_MS; round++) {
        const pages = ["/sites/alpha", "/api/sites", "/api/sites/beta", "/badge/alpha.svg", "/"];
        const answers = await Promise.all([
          ...Array.from({ length: 8 }, (_, i) => get(pages[i % pages.length]!)),
          get("/healthz"),
        ]);
        const health = answers.pop()!;
        assertEquals([health.status, health.text], [200, "ok\n"]);
        for (const answer of answers) {
          assertEquals(answer.status, 503, `${answer.path}: ${answer.text}`);
          assertEquals(answer.ms < READ_DEADLINE_MS, true, `${answer.path} took ${answer.ms} ms`);
        }
        assertMatch(
          JSON.parse(answers[1]!.text).error,
          /^Cannot read the database: .*lock timeout.*\(55P03\)\./,
        );
        counts.push(await connections());
      }
      assertEquals(counts.length >= 3, true, `rounds: ${counts.length}`);
      assertEquals(counts.filter((n) => n > POOL_SIZE), [], `serve's connections per round: ${counts}`);
      // A read of no locked table waits for a connection at most one lock timeout.
      const health = await get("/healthz");
      assertEquals([health.status, health.ms < READ_TIMEOUTS.lockMs + 2_000], [200, true]);

      release();
      await holding;
      assertEquals((await get("/api/sites/alpha")).status, 200);
      assertEquals((await get("/sites/alpha")).status, 200);
      assertEquals(await connections() <= POOL_SIZE, true);
    } finally {
      release();
      const { code, stderr } = await serve.stop();
      await locker.end();
      await admin.end();
      await db.drop();
      assertEquals(code, 0, stderr);
      assertEquals(/ ERROR /.test(stderr), false, stderr);
      // No read passed its deadline, so the pool was never replaced.
      assertEquals(/no answer from the database within/.test(stderr), false, stderr);
    }
  },
});
