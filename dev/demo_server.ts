/**
 * A small HTTP server on loopback for `deno task dev`: the targets the example sites.toml probes, since our
 * machines reach no public site. `/` answers 200 with "monitor demo ok", `/slow` answers after 3 s, and
 * `/status/N` answers status N.
 *
 * @module
 */
import { delay } from "../src/async.ts";
const port = Number(Deno.env.get("DEMO_PORT") ?? "8080");

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
  const path = new URL(request.url).pathname;
  if (path === "/") return new Response("<html><body>monitor demo ok</body></html>\n");
  if (path === "/slow") {
    await delay(3_000);
    return new Response("slow but here\n");
  }
  const status = /^\/status\/(\d{3})$/.exec(path);
  if (status) return new Response(`status ${status[1]}\n`, { status: Number(status[1]) });
  return new Response("not found\n", { status: 404 });
});
console.error(`demo server: http://127.0.0.1:${port}/`);
