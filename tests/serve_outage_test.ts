/**
 * `monitor serve` through a database outage: a private PostgreSQL is stopped under it (503 pages that say so,
 * the process keeps running) and started again (the same process answers 200 again).
 */
import postgres from "postgres";
import { assertEquals, assertMatch } from "./_assert.ts";
import { waitFor } from "./_cli.ts";
import { startPrivatePostgres } from "./_pg.ts";
import { fillServeDatabase } from "./_serve_data.ts";
import { startServe } from "./_serve.ts";

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
      const get = async (path: string) => {
        const response = await fetch(serve.base + path);
        return { status: response.status, text: await response.text(), headers: response.headers };
      };
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
