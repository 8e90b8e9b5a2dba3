/**
 * What bounding regex matching costs and buys (issue 12): the time of one match of a simple pattern on a
 * typical 2 KiB page (the common case) and of the catastrophic `(a+)+$` on 30 `a`s and a `b`, each in a
 * process without and with V8's linear-time engine flags (`src/check/regex.ts`). Without the flags the
 * catastrophic pattern is timed on shorter inputs (its time doubles with every `a`; 30 takes minutes), and the
 * time for 30 is extrapolated.
 *
 * `deno run -A bench/check/regex.ts` (about a minute); `--rounds N` repeats the common-case pair N times
 * (default 5), alternating, to show the noise of a shared machine.
 *
 * @module
 */
import { LINEAR_ENGINE_FLAGS } from "../../src/check/regex.ts";

const MATCHES = 200_000;
const PATTERNS = ["status: ok", "not present here", "<title>[^<]*</title>", "ok|fine|healthy"];
const HAZARD_SHORT = 24;

/** A 2 KiB HTML page whose status line is near the end, as health pages often have it. */
function page(): string {
  const head = "<!doctype html><html><head><title>Example Domain</title><meta charset=utf-8></head><body>";
  const para =
    "<div><p>This domain is for use in illustrative examples in documents. You may use it.</p></div>";
  const tail = "<footer>status: ok</footer></body></html>";
  const body = head + para.repeat(Math.ceil(2048 / para.length));
  return body.slice(0, 2048 - tail.length) + tail;
}

/** Microseconds per match of `regex` on `text`, after a warm-up. */
function perMatch(regex: RegExp, text: string, count: number): number {
  for (let i = 0; i < count / 10; i++) text.search(regex);
  const start = performance.now();
  for (let i = 0; i < count; i++) text.search(regex);
  return (performance.now() - start) * 1000 / count;
}

/** Runs in the child: prints one JSON line of timings. */
function child(): void {
  const text = page();
  const common = Object.fromEntries(PATTERNS.map((p) => [p, perMatch(new RegExp(p), text, MATCHES)]));
  const linear = Deno.args.includes("--linear");
  const hazardLength = linear ? 30 : HAZARD_SHORT;
  const hazardText = `${"a".repeat(hazardLength)}b`;
  const first = performance.now();
  hazardText.search(/(a+)+$/);
  const firstMs = performance.now() - first;
  const repeatUs = linear ? perMatch(/(a+)+$/, hazardText, 1000) : firstMs * 1000;
  console.log(JSON.stringify({ common, hazardLength, firstMs, repeatUs }));
}

async function run(linear: boolean): Promise<Record<string, unknown>> {
  const flags = linear ? [`--v8-flags=${LINEAR_ENGINE_FLAGS}`] : [];
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, new URL(import.meta.url).pathname, "--child", ...(linear ? ["--linear"] : [])],
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`Cannot run the benchmark child: exit code ${output.code}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

if (Deno.args.includes("--child")) {
  child();
} else {
  const roundsAt = Deno.args.indexOf("--rounds");
  const rounds = roundsAt === -1 ? 5 : Number(Deno.args[roundsAt + 1]);
  const sums: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const linear of [false, true]) {
      const result = await run(linear) as { common: Record<string, number>; firstMs: number };
      const label = linear ? "flags" : "no flags";
      for (const [pattern, us] of Object.entries(result.common)) {
        (sums[`${pattern}|${label}`] ??= []).push(us);
      }
      if (round === 0) {
        const hazard = result as unknown as { hazardLength: number; firstMs: number; repeatUs: number };
        const extrapolated = linear
          ? ""
          : `; for 30: about ${
            (hazard.firstMs * 2 ** (30 - hazard.hazardLength) / 1000).toFixed(0)
          } s (doubling per 'a')`;
        console.log(
          `(a+)+$ on ${hazard.hazardLength} 'a' + 'b', ${label}: first match ${
            hazard.firstMs.toFixed(1)
          } ms, ` +
            `then ${(hazard.repeatUs / 1000).toFixed(3)} ms per match${extrapolated}`,
        );
      }
    }
  }
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  console.log(`\nmicroseconds per match on a 2 KiB page, median of ${rounds} processes (min-max):`);
  for (const pattern of PATTERNS) {
    const [off, on] = ["no flags", "flags"].map((label) => sums[`${pattern}|${label}`] ?? []);
    const show = (values: number[]) =>
      `${median(values).toFixed(3)} (${Math.min(...values).toFixed(3)}-${Math.max(...values).toFixed(3)})`;
    const change = ((median(on ?? []) / median(off ?? []) - 1) * 100).toFixed(1);
    console.log(
      `  ${JSON.stringify(pattern).padEnd(24)} no flags ${show(off ?? [])}  flags ${
        show(on ?? [])
      }  ${change}%`,
    );
  }
}
