/**
 * The benchmark of the read side (`monitor serve`): for 1,000 and 10,000 sites with a year of rollups
 * (bench/serve/data.ts), the time to first byte of `/` and `/api/sites` (first page of 50, warm), of the last
 * page, of a site page and of `/metrics`, and the weight of `/` (raw and gzip). `monitor serve` runs as a process
 * with the program's permissions; every request is sequential and repeated (median and worst of the warm runs).
 * Targets: under 200 ms for 1,000 sites warm, under 1 s for 10,000 (paged); `/` for 1,000 sites under 300 KB.
 *
 * Run alone with `deno run -A bench/serve/main.ts [--sites 1000,10000] [--runs N] [--no-write]`; writes
 * `bench/results/serve.json`. Bounded: N runs per URL (default 15), two sizes; about 3 minutes in all.
 *
 * @module
 */
import postgres from "postgres";
import { PERMISSIONS } from "../../dev/permissions.ts";
import { ADMIN_URL } from "../../dev/services.ts";
import { machineInfo } from "../procfs.ts";
import { generateHistory, type GenerationReport } from "./data.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const RESULTS = `${ROOT}bench/results/serve.json`;
const TARGETS = { ttfb_1000_ms: 200, ttfb_10000_ms: 1_000, page_1000_bytes: 300 * 1024 } as const;

function flag(name: string, fallback: string): string {
  const index = Deno.args.indexOf(`--${name}`);
  return index >= 0 ? Deno.args[index + 1] ?? fallback : fallback;
}

/** Time to first byte (fetch resolves at the response headers) and the body's size, raw and gzip. */
async function measure(
  url: string,
): Promise<{ ttfbMs: number; bytes: number; gzipBytes: number; status: number }> {
  const started = performance.now();
  const response = await fetch(url, { headers: { "accept-encoding": "identity" } });
  const ttfbMs = performance.now() - started;
  const body = new Uint8Array(await response.arrayBuffer());
  const gzipped = await new Response(
    new Blob([body]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  return { ttfbMs, bytes: body.length, gzipBytes: gzipped.byteLength, status: response.status };
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

function monitor(args: string[], databaseUrl: string, stdout: "piped" | "null" = "null"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, `${ROOT}main.ts`, ...args],
    env: { DATABASE_URL: databaseUrl },
    stdout,
    stderr: "piped",
  }).spawn();
}

/** Starts `monitor serve` on a free port and returns its base URL once it listens (30 s at most). */
async function startServe(databaseUrl: string): Promise<{ base: string; stop: () => Promise<void> }> {
  const child = monitor(["serve", "--listen", "127.0.0.1:0"], databaseUrl);
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const timer = setTimeout(() => child.kill("SIGTERM"), 30_000);
  let base: string | null = null;
  while (base === null) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Cannot start monitor serve: ${log}`);
    log += value;
    base = /serving address=(http:\/\/127\.0\.0\.1:\d+)\//.exec(log)?.[1] ?? null;
  }
  clearTimeout(timer);
  const draining = (async () => {
    while (!(await reader.read()).done) { /* keep the pipe flowing */ }
  })();
  return {
    base,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await draining;
    },
  };
}

async function benchSize(sites: number, runs: number) {
  const name = `monitor_bench_serve_${sites}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {} });
  let generation: GenerationReport;
  try {
    generation = await generateHistory(sql, sites);
  } finally {
    await sql.end();
  }
  console.error(`bench serve: ${sites} sites generated in ${generation.seconds} s`);
  const serve = await startServe(url.toString());
  const lastPage = Math.ceil(sites / 50);
  const paths: Record<string, string> = {
    "/": "/",
    "/api/sites": "/api/sites",
    "/ (last page)": `/?page=${lastPage}`,
    "/api/sites (last page)": `/api/sites?page=${lastPage}`,
    "/?q=site-0004 (filter)": "/?q=site-0004",
    "/sites/site-00050": "/sites/site-00050",
    "/api/sites/site-00050": "/api/sites/site-00050",
    "/badge/site-00050/uptime.svg": "/badge/site-00050/uptime.svg?period=30d",
    "/metrics": "/metrics",
  };
  const results: Record<string, unknown> = {};
  try {
    for (const [label, path] of Object.entries(paths)) {
      const cold = await measure(serve.base + path);
      const warm: number[] = [];
      let last = cold;
      for (let i = 0; i < runs; i++) {
        last = await measure(serve.base + path);
        warm.push(last.ttfbMs);
      }
      warm.sort((a, b) => a - b);
      results[label] = {
        status: last.status,
        ttfb_cold_ms: round(cold.ttfbMs),
        ttfb_warm_median_ms: round(warm[Math.floor(warm.length / 2)]!),
        ttfb_warm_max_ms: round(warm.at(-1)!),
        bytes: last.bytes,
        gzip_bytes: last.gzipBytes,
      };
      console.error(`bench serve: ${sites} sites ${label}: ${JSON.stringify(results[label])}`);
    }
    // `monitor status` reads every site (no paging): the whole process, Deno's start included.
    const started = performance.now();
    const status = await monitor(["status", "--json"], url.toString(), "piped").output();
    results["monitor status --json (process)"] = {
      exit_code: status.code,
      wall_ms: round(performance.now() - started),
      sites: JSON.parse(new TextDecoder().decode(status.stdout) || "{}").sites?.length ?? null,
    };
    console.error(
      `bench serve: ${sites} sites status: ${JSON.stringify(results["monitor status --json (process)"])}`,
    );
  } finally {
    await serve.stop();
    if (!Deno.args.includes("--keep")) await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  }
  return { generation, requests: results };
}

const sizes = flag("sites", "1000,10000").split(",").map(Number);
const runs = Number(flag("runs", "15"));
const machine = machineInfo();
const bySize: Record<string, unknown> = {};
for (const sites of sizes) bySize[String(sites)] = await benchSize(sites, runs);
const report = {
  benchmark: "serve",
  machine,
  run: `deno run -A bench/serve/main.ts --sites ${sizes.join(",")} --runs ${runs}`,
  method:
    "monitor serve as a process (read-only session), one request at a time from the same machine; TTFB = fetch " +
    "until the response headers (the server renders the whole page before answering); the first request is " +
    "'cold', then `runs` warm ones (median, max). Pages are 50 sites; gzip size computed from the body.",
  targets: TARGETS,
  sizes: bySize,
};
console.log(JSON.stringify(report, null, 2));
if (!Deno.args.includes("--no-write")) {
  await Deno.writeTextFile(RESULTS, JSON.stringify(report, null, 2) + "\n");
}
