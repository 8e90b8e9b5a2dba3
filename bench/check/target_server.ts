/**
 * The target of the agent benchmark: a tiny HTTP server on loopback that answers every path with 200 and a
 * body of about 100 bytes. It runs as its own process, so that it does not share the event loop of the
 * process it serves.
 *
 * Usage: `deno run --allow-net bench/check/target_server.ts [PORT]` (0 or nothing: any free port). Prints the port
 * on stdout, one line, once it listens; stops on SIGTERM or SIGINT.
 *
 * @module
 */

/** The body every request gets: 100 bytes of JSON that the benchmark's sites match with a regex. */
export const TARGET_BODY = `{"status":"ok","service":"monitor-bench-target","padding":"${"x".repeat(38)}"}\n`;

/** Parses the port argument: an integer from 0 to 65535, 0 when absent. */
export function parsePort(arg: string | undefined): number {
  if (arg === undefined) return 0;
  const port = Number(arg);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`Cannot listen as the port must be an integer from 0 to 65535: got '${arg}'`);
  }
  return port;
}

if (import.meta.main) {
  const body = new TextEncoder().encode(TARGET_BODY);
  const headers = { "content-type": "application/json" };
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: parsePort(Deno.args[0]),
      onListen: ({ port }) => console.log(port),
    },
    () => new Response(body, { headers }),
  );
  const stop = () => server.shutdown();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await server.finished;
}
