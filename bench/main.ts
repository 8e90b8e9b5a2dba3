/**
 * `deno task bench`: every benchmark, one after another (so they do not compete for the two cores), each in
 * a process of its own. Figures are printed and written under `bench/results/`:
 *
 * - `check.json`: the agent, 30,000 sites at 3,000 probes/s, then its highest rate against a bare fetch loop;
 * - `sink.json`: raw consume, raw COPY and the sink on a million checks, and latency at 1,000 checks/s;
 * - `db_insert.txt`: the writer's insert methods and the bytes a stored check takes;
 * - `history.json`: a year of history for 2,000 sites: report and status queries, bytes per tier, projections;
 * - `serve.json`: the read side's time to first byte and page weight with 1,000 and 10,000 sites.
 *
 * `deno task bench check` (or `sink`, `db`, `history`, `serve`) runs one of them.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;
const results = `${root}bench/results`;

interface Bench {
  readonly script: string;
  readonly args: readonly string[];
  /** Where stdout is kept, for benchmarks that only print. */
  readonly output?: string;
  readonly timeoutMs: number;
}

const BENCHES: Record<string, Bench> = {
  db: {
    script: "bench/sink/db_insert.ts",
    args: [],
    output: `${results}/db_insert.txt`,
    timeoutMs: 10 * 60_000,
  },
  check: { script: "bench/check/main.ts", args: [], timeoutMs: 15 * 60_000 },
  history: { script: "bench/db/history.ts", args: [], timeoutMs: 30 * 60_000 },
  sink: { script: "bench/sink/main.ts", args: [], timeoutMs: 20 * 60_000 },
  serve: { script: "bench/serve/main.ts", args: [], timeoutMs: 30 * 60_000 },
};

async function run(name: string, bench: Bench): Promise<boolean> {
  console.log(`\n=== bench ${name}: ${bench.script} ${bench.args.join(" ")}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${root}${bench.script}`, ...bench.args],
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGTERM"), bench.timeoutMs);
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    const part = decoder.decode(chunk, { stream: true });
    text += part;
    await Deno.stdout.write(chunk);
  }
  const status = await child.status;
  clearTimeout(timer);
  if (bench.output) await Deno.writeTextFile(bench.output, text);
  if (!status.success) console.error(`bench ${name} failed with exit code ${status.code}`);
  return status.success;
}

await Deno.mkdir(results, { recursive: true });
const chosen = Deno.args.length > 0 ? Deno.args : Object.keys(BENCHES);
let ok = true;
for (const name of chosen) {
  const bench = BENCHES[name];
  if (bench === undefined) {
    console.error(`bench: Cannot run '${name}': expected one of ${Object.keys(BENCHES).join(", ")}`);
    Deno.exit(2);
  }
  ok = (await run(name, bench)) && ok;
}
console.log(`\nbench: figures in ${results}/`);
Deno.exit(ok ? 0 : 1);
