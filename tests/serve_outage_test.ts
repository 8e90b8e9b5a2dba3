/**
 * `monitor serve` through a database outage: a private PostgreSQL is stopped under it (503 pages that say so,
 * the process keeps running) and started again (the same process answers 200 again); a database that refuses
 * connections or logins, or was never migrated, gives 503 pages that say so too.
 */
import postgres from "postgres";
import { assertEquals, assertMatch } from "./_assert.ts";
import { waitFor } from "./_cli.ts";
import { ADMIN_URL, createTestDatabase, startPrivatePostgres } from "./_pg.ts";
import { fillServeDatabase } from "./_serve_data.ts";
import { getFrom, startServe } from "./_serve.ts";

Deno.test({
  name: "a database outage gives 503 pages and the server recovers when the database returns",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const pg = await startPrivatePostgres();
    const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    await admin`create database monitor`;
    await admin.end();
    const url = pg.url.replace(/\/postgres$/, "/monitor");
    const sql = postgres(url, { max: 2, onnotice: () => {} });
    await fillServeDatabase(sql, new Date(Math.floor(Date.now() / 60_000) * 60_000));
    await sql.end();
    const serve = await startServe(url);
    try {
      const get = (path: string) => getFrom(serve.base, path);
      assertEquals((await get("/")).status, 200);

      await pg.stop("fast");
      const page = await get("/");
      assertEquals(page.status, 503);
      assertMatch(page.text, /<h2 class="error" id="error">503 Database unavailable<\/h2>/);
      assertMatch(
        page.text,
        /<p id="message">Cannot read the database: .+\. This page will try again\.<\/p>/,
      );
      assertEquals(page.headers.get("retry-after"), "10");
      const api = await get("/api/sites");
      assertEquals(api.status, 503);
      assertMatch(JSON.parse(api.text).error, /^Cannot read the database: /);
      assertEquals((await get("/healthz")).status, 503);
      assertEquals((await get("/badge/alpha.svg")).status, 503);
      assertEquals((await get("/metrics")).status, 503);
      assertMatch(serve.process.stderr.text, /database unavailable/);

      await pg.start();
      let last = 0;
      await waitFor(
        async () => (last = (await get("/api/sites")).status) === 200,
        30_000,
        "a 200 after the restart",
      );
      assertEquals(last, 200);
      assertEquals((await get("/")).status, 200);
      assertEquals((await get("/healthz")).text, "ok\n");
    } finally {
      const { code, stderr } = await serve.stop();
      assertEquals(code, 0, stderr);
      await pg.destroy();
    }
  },
});

Deno.test({
  name: "a database that refuses connections or logins gives 503 with Retry-After, not 500",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const db = await createTestDatabase("monitor_serve_refused");
    await fillServeDatabase(db.sql, new Date(Math.floor(Date.now() / 60_000) * 60_000));
    await db.sql.end();
    const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
    await admin.unsafe(`alter database "${db.name}" with allow_connections false`);
    const url = (change: (url: URL) => void) => {
      const target = new URL(db.url);
      change(target);
      return target.toString();
    };
    const cases = [
      { code: "55000", url: db.url },
      { code: "3D000", url: url((u) => u.pathname = `/${db.name}_missing`) },
      { code: "28000", url: url((u) => u.username = "monitor_no_such_role") },
    ];
    try {
      for (const { code, url } of cases) {
        const serve = await startServe(url);
        try {
          for (
            const path of ["/healthz", "/", "/api/sites", "/sites/alpha", "/badge/alpha.svg", "/metrics"]
          ) {
            const answer = await getFrom(serve.base, path);
            assertEquals([path, answer.status, answer.headers.get("retry-after")], [path, 503, "10"]);
            // A badge says "database unavailable"; the others give the reason.
            if (!path.startsWith("/badge/")) {
              assertMatch(answer.text, new RegExp(`\\(${code}\\)`), answer.text);
            }
          }
        } finally {
          const { code: exit, stderr } = await serve.stop();
          assertEquals(exit, 0, stderr);
          assertEquals(/ ERROR /.test(stderr), false, stderr);
        }
      }
    } finally {
      await admin.unsafe(`alter database "${db.name}" with allow_connections true`);
      await admin.end();
      await db.drop();
    }
  },
});

Deno.test({
  name: "a database never migrated gives 503 pages that say to run monitor migrate, and /healthz is not ok",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const db = await createTestDatabase("monitor_serve_empty");
    const serve = await startServe(db.url);
    try {
      const advice = "The database has not been migrated: run `monitor migrate`, " +
        "or start `monitor sink`, which migrates it.";
      const health = await getFrom(serve.base, "/healthz");
      assertEquals([health.status, health.text, health.headers.get("retry-after")], [
        503,
        advice + "\n",
        "10",
      ]);
      const api = await getFrom(serve.base, "/api/sites");
      assertEquals([api.status, JSON.parse(api.text)], [503, {
        error: `Cannot read the database: relation "site_status" does not exist (42P01). ${advice}`,
      }]);
      const page = await getFrom(serve.base, "/");
      assertEquals(page.status, 503);
      assertMatch(page.text, /<h2 class="error" id="error">503 Database not migrated<\/h2>/);
      assertMatch(page.text, /run `monitor migrate`, or start `monitor sink`/);
    } finally {
      const { code, stderr } = await serve.stop();
      await db.drop();
      assertEquals(code, 0, stderr);
      assertEquals(/ ERROR /.test(stderr), false, stderr);
    }
  },
});
