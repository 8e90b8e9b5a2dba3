/**
 * The baseline of the agent benchmark: a bare `fetch` loop with a fresh connection per request (as the
 * agent's probes), `--concurrency` requests in flight, each body read fully, for `--seconds` seconds.
 * Requests completed in the first `--warmup` seconds are not counted.
 *
 * Usage: `deno run --allow-net bench/check/bare_fetch.ts --base http://127.0.0.1:PORT [--concurrency 64]
 * [--seconds 25] [--warmup 5] [--paths 20000]`. Prints one JSON line on stdout:
 * `{"requests", "errors", "seconds", "rps", "cpu_seconds"}` (`cpu_seconds`: this process, counted window).
 *
 * @module
 */
import process from "node:process";

/** What one run of the loop measured. */
export interface BareResult {
  /** Responses read fully within the counted window. */
  readonly requests: number;
  /** Failed requests within the counted window. */
  readonly errors: number;
  /** Length of the counted window, in seconds. */
  readonly seconds: number;
  /** `requests / seconds`. */
  readonly rps: number;
  /** CPU time (user + system) of this process over the counted window, in seconds. */
  readonly cpu_seconds: number;
}

/** Options of {@linkcode bareFetchLoop}. */
export interface BareOptions {
  /** Base URL, e.g. `http://127.0.0.1:8080`; request `i` goes to `${base}/${i % paths}`. */
  readonly base: string;
  readonly concurrency: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly paths: number;
}

// A ceiling on requests, so that the loop is bounded in count as well as in time.
const MAX_REQUESTS = 50_000_000;
const REQUEST_TIMEOUT_MS = 5_000;

/**
 * Runs the loop and returns what it measured.
 *
 * @example
 * ```ts
 * const result = await bareFetchLoop({ base: "http://127.0.0.1:8080", concurrency: 64, seconds: 25, warmupSeconds: 5, paths: 1000 });
 * console.log(result.rps);
 * ```
 */
export async function bareFetchLoop(options: BareOptions): Promise<BareResult> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const start = performance.now();
  const countFrom = start + options.warmupSeconds * 1000;
  const end = start + options.seconds * 1000;
  let issued = 0;
  let requests = 0;
  let errors = 0;
  let cpuAtCountFrom: ReturnType<typeof process.cpuUsage> | null = null;
  const worker = async () => {
    while (performance.now() < end && issued < MAX_REQUESTS) {
      const path = issued++ % options.paths;
      let ok = true;
      try {
        const response = await fetch(`${options.base}/${path}`, {
          client,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        await response.arrayBuffer();
      } catch {
        ok = false;
      }
      const now = performance.now();
      if (now >= countFrom && now < end) {
        cpuAtCountFrom ??= process.cpuUsage();
        if (ok) requests++;
        else errors++;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    client.close();
  }
  const cpu = process.cpuUsage(cpuAtCountFrom ?? undefined);
  const seconds = options.seconds - options.warmupSeconds;
  return {
    requests,
    errors,
    seconds,
    rps: Math.round(requests / seconds),
    cpu_seconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
  };
}

function flag(args: readonly string[], name: string, fallback: string): string {
  const index = args.indexOf(`--${name}`);
  if (index === -1) return fallback;
  const value = args[index + 1];
  if (value === undefined) throw new TypeError(`Cannot run as flag '--${name}' needs a value`);
  return value;
}

function positive(args: readonly string[], name: string, fallback: number): number {
  const text = flag(args, name, String(fallback));
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`Cannot run as flag '--${name}' must be a non-negative integer: got '${text}'`);
  }
  return value;
}

if (import.meta.main) {
  const args = Deno.args;
  const options: BareOptions = {
    base: flag(args, "base", ""),
    concurrency: positive(args, "concurrency", 64),
    seconds: positive(args, "seconds", 25),
    warmupSeconds: positive(args, "warmup", 5),
    paths: positive(args, "paths", 20_000),
  };
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(options.base)) {
    throw new TypeError(`Cannot run as '--base' must be http://127.0.0.1:PORT: got '${options.base}'`);
  }
  if (options.warmupSeconds >= options.seconds || options.concurrency < 1 || options.paths < 1) {
    throw new RangeError("Cannot run as '--warmup' must be under '--seconds', and the others positive");
  }
  console.log(JSON.stringify(await bareFetchLoop(options)));
}
