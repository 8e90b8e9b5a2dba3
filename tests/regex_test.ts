import { assertEquals, assertThrows } from "./_assert.ts";
import { compilePattern, matchPattern } from "../src/check/regex.ts";
import { patternCost } from "../src/check/pattern_workers.ts";
import { finish, runMonitor, spawnMonitor, tempFile } from "./_cli.ts";

/** Asserts a bound, with the measured value in the message. */
const assert = (holds: boolean, message: string): void => assertEquals(holds, true, message);

const BACKREFERENCE =
  "Cannot use a backreference ('\\1'): only a backtracking match can check it, which has " +
  "no time bound; repeat the group's pattern instead, such as '(\\w)\\w' for '(\\w)\\1'";
const LOOKAHEAD = "Cannot use a lookahead ('(?='): only a backtracking match can check it, which has no " +
  "time bound; match the text itself instead, such as 'ab' for 'a(?=b)'";
const NEGATIVE_LOOKAHEAD =
  "Cannot use a lookahead ('(?!'): only a backtracking match can check it, which has " +
  "no time bound; use a negated class instead, such as 'a[^b]' for 'a(?!b)'";
const PROPERTY = "Cannot use a Unicode property escape ('\\p{L}'): it needs Unicode mode, which V8 cannot " +
  "match in linear time; list the characters in a class instead, such as '[A-Za-zÀ-ÿ]'";
const NOT_LINEAR =
  "Cannot match this pattern in linear time: simplify it (a group repeated a counted number " +
  "of times, such as '(.*a){20}', is the usual cause; use + or * or a smaller count)";

Deno.test("compilePattern() names the construct that cannot be bounded and what to write instead", () => {
  assertThrows(() => compilePattern("(\\w)\\1"), RangeError, BACKREFERENCE);
  assertThrows(() => compilePattern("ok(?=!)"), RangeError, LOOKAHEAD);
  assertThrows(() => compilePattern("ok(?!\\?)"), RangeError, NEGATIVE_LOOKAHEAD);
  assertThrows(() => compilePattern("\\p{L}+"), RangeError, PROPERTY);
  assertThrows(
    () => compilePattern("(?<x>a)\\k<x>"),
    RangeError,
    "Cannot use a backreference ('\\k<…>'): only a backtracking match can check it, which has no time " +
      "bound; repeat the group's pattern instead",
  );
  assertThrows(
    () => compilePattern("(?i:ok)"),
    RangeError,
    "Cannot use a modifier group ('(?i:'): V8 cannot match it in linear time; write the cases out in classes " +
      "instead, such as '[Oo][Kk]' for '(?i:ok)'",
  );
  assertThrows(() => compilePattern("a(?-s:.)"), RangeError, /^Cannot use a modifier group \('\(\?-s:'\)/);
  // Without a named group `\k<n>` is the letters "k<n>", not a backreference.
  assertEquals(compilePattern("k<n>\\k<n>").test("k<n>k<n>"), true);
  assertEquals(compilePattern("(?:ok)").test("ok"), true);
  assertThrows(
    () => compilePattern("(unclosed"),
    SyntaxError,
    "Invalid regular expression: /(unclosed/: Unterminated group",
  );
});

Deno.test("compilePattern() accepts escaped and bracketed look-alikes of those constructs", () => {
  for (
    const source of ["\\\\1", "[\\1]", "\\(?=x\\)", "[(?=]", "\\\\p{L}", "(?<=a)b", "(?<name>x)", "\\d+"]
  ) {
    assertEquals(compilePattern(source).source, source);
  }
  assertEquals(compilePattern("ok").flags, "");
});

Deno.test("matchPattern() reports a match, a miss, and a stack overflow as an error value", () => {
  assertEquals(matchPattern(/ok/, "status: ok"), { matched: true });
  assertEquals(matchPattern(/ok/, "status: down"), { matched: false });
  assertEquals(matchPattern(/x/, ""), { matched: false });
  // Irregexp's backtrack stack grows with each repetition of the group; past V8's limit it throws.
  assertEquals(matchPattern(/^(?:a|b)*$/, `${"a".repeat(10_000_000)}c`), {
    matched: null,
    error: "Maximum call stack size exceeded",
  });
});

// Everything below runs `monitor check` as a process: only there does V8 run with the flags that bound matching.

type Row = [behaviour: string, pattern: string, body: string, expected: boolean | string];

/** Each pattern against a body: true (matches), false (does not), or the exact config error after the key. */
const TABLE: Row[] = [
  ["simple text matches", "systems ok", "all systems ok today", true],
  ["simple text is missing", "systems ok", "all systems down", false],
  ["anchored at the start matches", "^<!doctype html>", "<!doctype html><p>hi</p>", true],
  ["anchored at both ends without m does not match across a newline", "^ok$", "ok\nmore", false],
  ["an alternation matches its second branch", "ok|healthy|green", "status: healthy", true],
  ["an alternation matches none", "ok|healthy|green", "status: red", false],
  ["a class of accented letters matches", "caf[à-ÿ] ouvert", "le café ouvert", true],
  ["a Cyrillic range matches", "[а-я]+ мир", "привет мир", true],
  ["a lookbehind runs in linear time and matches", "(?<=status: )ok", "status: ok", true],
  ["the catastrophic pattern does not match, quickly", "(a+)+$", `${"a".repeat(30)}b`, false],
  ["a Unicode property escape is refused", "\\p{L}", "x", PROPERTY],
  ["a backreference is refused", "(\\w)\\1", "aa", BACKREFERENCE],
  ["a lookahead is refused", "ok(?=!)", "ok!", LOOKAHEAD],
  ["a negative lookahead is refused", "ok(?!\\?)", "ok", NEGATIVE_LOOKAHEAD],
  ["a pattern V8 cannot run in linear time is refused", "(.*a){20}$", "a", NOT_LINEAR],
];

/** A TOML basic string for `text`. */
const quote = (text: string): string => JSON.stringify(text);

async function withServer<T>(
  bodies: readonly string[],
  run: (base: string) => Promise<T>,
): Promise<T> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const index = Number(new URL(request.url).pathname.slice(1));
    return new Response(bodies[index] ?? "", { headers: { "content-type": "text/plain; charset=utf-8" } });
  });
  try {
    return await run(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

Deno.test("monitor check: a table of patterns against bodies, each matching, missing or refused exactly", async () => {
  const accepted = TABLE.filter(([, , , expected]) => typeof expected === "boolean");
  await withServer(accepted.map(([, , body]) => body), async (base) => {
    const sites = accepted.map(([, pattern], index) =>
      `[[site]]\nname = "row${index}"\nurl = "${base}/${index}"\ntimeout = "5s"\nregex = ${quote(pattern)}\n`
    );
    const file = await tempFile(sites.join("\n"));
    try {
      const { code, stdout, stderr } = await runMonitor(["check", "--once", "--json", "--sites", file]);
      assertEquals([code, stderr], [1, ""]);
      const results = stdout.trim().split("\n").map((line) => JSON.parse(line));
      const outcome = (name: string) => {
        const result = results.find((r) => r.site === name);
        return [result?.regex_matched, result?.up, result?.error?.kind ?? null];
      };
      accepted.forEach(([behaviour, pattern, , matched], index) => {
        assertEquals(
          outcome(`row${index}`),
          matched ? [true, true, null] : [false, false, "content"],
          `${behaviour}: /${pattern}/`,
        );
      });
      const hazard = results.find((r) => r.regex === "(a+)+$");
      assertEquals(hazard?.error?.message, "Body does not match /(a+)+$/");
      assert(hazard.duration_ms < 1000, `the catastrophic pattern took ${hazard.duration_ms} ms`);
    } finally {
      await Deno.remove(file);
    }
  });
  for (const [behaviour, pattern, , expected] of TABLE) {
    if (typeof expected !== "string") continue;
    const file = await tempFile(
      `[[site]]\nname = "x"\nurl = "http://127.0.0.1:2/"\nregex = ${quote(pattern)}\n`,
    );
    try {
      const { code, stderr } = await runMonitor(["check", "--dry-run", "--sites", file]);
      assertEquals(
        [code, stderr.split("\n")[0]],
        [2, `monitor check: ${file}:4: Cannot load site 'x': key 'regex' ${quote(pattern)}: ${expected}`],
        behaviour,
      );
    } finally {
      await Deno.remove(file);
    }
  }
});

Deno.test("monitor check refuses a regex site when V8's linear-time engine is off", async () => {
  const file = await tempFile(`[[site]]\nname = "x"\nurl = "http://127.0.0.1:2/"\nregex = "ok"\n`);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", new URL("../main.ts", import.meta.url).pathname, "check", "--sites", file],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const { code, stderr } = await finish(child);
    assertEquals([code, stderr.split("\n")[0]], [
      2,
      `monitor check: ${file}: Cannot bound the regex of site 'x': V8's linear-time regex engine is off; ` +
      "run deno with --v8-flags=--enable-experimental-regexp-engine," +
      "--enable-experimental-regexp-engine-on-excessive-backtracks (deno task dev and dist/monitor do)",
    ]);
  } finally {
    await Deno.remove(file);
  }
});

const HEALTHY = 100;
const SCENARIO_MS = 30_000;
const DRAIN_TIMEOUT_MS = 5_000;

Deno.test({
  name: "monitor check: a catastrophic pattern fails its own site as content and never delays 100 others",
  sanitizeResources: false,
  async fn() {
    const bodies = [`${"a".repeat(30)}b`, "<html><body>systems ok</body></html>"];
    await withServer(bodies, async (base) => {
      const sites = [
        `[[site]]\nname = "hazard"\nurl = "${base}/0"\ninterval = "1s"\ntimeout = "1s"\nregex = "(a+)+$"\n`,
        ...Array.from(
          { length: HEALTHY },
          (_, i) =>
            `[[site]]\nname = "site${i}"\nurl = "${base}/1"\ninterval = "1s"\ntimeout = "1s"\nregex = "systems ok"\n`,
        ),
      ];
      const file = await tempFile(sites.join("\n"));
      const child = spawnMonitor([
        "check",
        "--sites",
        file,
        "--log-format",
        "json",
        "--drain-timeout",
        `${DRAIN_TIMEOUT_MS / 1000}s`,
      ]);
      const lines: string[] = [];
      const reading = (async () => {
        let rest = "";
        const decoder = new TextDecoder();
        for await (const chunk of child.stdout) {
          const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
          rest = parts.pop() ?? "";
          lines.push(...parts);
        }
      })();
      const errors = (async () => {
        let text = "";
        for await (const chunk of child.stderr) text += new TextDecoder().decode(chunk);
        return text;
      })();
      await new Promise((resolve) => setTimeout(resolve, SCENARIO_MS));
      const stopAt = performance.now();
      child.kill("SIGTERM");
      const status = await child.status;
      const stopMs = performance.now() - stopAt;
      await reading;
      const log = await errors;
      await Deno.remove(file);

      const results = lines.map((line) => JSON.parse(line));
      const healthy = results.filter((r) => r.site !== "hazard");
      const hazard = results.filter((r) => r.site === "hazard");
      const lags = healthy.map((r) => Date.parse(r.started_at) - Date.parse(r.scheduled_at)).sort((a, b) =>
        a - b
      );
      const p99 = lags[Math.floor(lags.length * 0.99)] ?? Infinity;
      const perSite = Map.groupBy(healthy, (r) => r.site);
      const fewest = Math.min(
        ...Array.from({ length: HEALTHY }, (_, i) => perSite.get(`site${i}`)?.length ?? 0),
      );
      // On schedule: each site's probes are due exactly one interval apart, no slot skipped.
      const gaps = new Set([...perSite.values()].flatMap((probes) => {
        const due = probes.map((r) => Date.parse(r.scheduled_at)).sort((a, b) => a - b);
        return due.slice(1).map((time, i) => time - (due[i] ?? 0));
      }));
      console.log(
        `healthy probes ${healthy.length}, fewest per site ${fewest}, lag p99 ${p99} ms, max ${
          lags.at(-1)
        } ms; ` +
          `hazard probes ${hazard.length}, slowest ${Math.max(...hazard.map((r) => r.duration_ms))} ms; ` +
          `stopped in ${Math.round(stopMs)} ms`,
      );
      assertEquals(status.code, 0, log);
      // The process takes a second or two to start on a busy machine.
      assert(fewest >= SCENARIO_MS / 1000 - 5, `a healthy site was probed only ${fewest} times in 30 s`);
      assertEquals([...gaps], [1000]);
      assert(p99 < 50, `schedule lag p99 is ${p99} ms`);
      assertEquals(healthy.filter((r) => !r.up).map((r) => [r.site, r.error]), []);
      assert(hazard.length >= SCENARIO_MS / 1000 - 5, `the hazard site was probed ${hazard.length} times`);
      assertEquals(
        new Set(hazard.map((r) => JSON.stringify([r.up, r.error]))),
        new Set([JSON.stringify([false, { kind: "content", message: "Body does not match /(a+)+$/" }])]),
      );
      assert(hazard.every((r) => r.duration_ms < 1000), "a hazard probe ran past its 1 s timeout");
      assert(stopMs < DRAIN_TIMEOUT_MS, `SIGTERM took ${Math.round(stopMs)} ms`);
    });
  },
});

Deno.test("monitor check: a long match runs off the agent's thread, fails its site in time, and delays no other", async () => {
  // Linear, but 201 pattern units times 300,000 characters: about a second of matching (0.8-1.8 s measured,
  // from a fast machine to a slow one), for which, on the agent's thread, the other site's probes would wait;
  // well past the slow site's 300 ms.
  const slow = `${"a?".repeat(100)}b`;
  await withServer(["a".repeat(300_000), "ok"], async (base) => {
    const file = await tempFile(
      `[[site]]\nname = "slow"\nurl = "${base}/0"\ninterval = "2s"\ntimeout = "300ms"\nregex = "${slow}"\n` +
        `\n[[site]]\nname = "quick"\nurl = "${base}/1"\ninterval = "1s"\ntimeout = "1s"\n`,
    );
    try {
      const child = spawnMonitor(["check", "--sites", file]);
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      child.kill("SIGTERM");
      const { code, stdout, stderr } = await finish(child);
      assertEquals(code, 0, stderr);
      const results = stdout.trim().split("\n").map((line) => JSON.parse(line));
      const quick = results.filter((r) => r.site === "quick");
      const lags = quick.map((r) => Date.parse(r.started_at) - Date.parse(r.scheduled_at));
      assert(quick.length >= 4, `the quick site was probed ${quick.length} times`);
      assert(Math.max(...lags) < 250, `the quick site's probes started up to ${Math.max(...lags)} ms late`);
      const [late] = results.filter((r) => r.site === "slow");
      assertEquals([late?.up, late?.error?.kind], [false, "content"]);
      assert(
        /took too long on 300000 bytes: it ran past the 300 ms timeout/.test(late?.error?.message),
        late?.error?.message,
      );
      assert(late.duration_ms < 1_000, `the slow site's probe took ${late.duration_ms} ms`);
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("patternCost() is the bytes times the pattern's size, counted repetitions multiplied out", () => {
  assertEquals(patternCost(/ok/, 1_000), 2_000);
  assertEquals(patternCost(/(a?){100}b/, 10), 10 * 100 * 10);
  assertEquals(patternCost(/x{2,5}y{3,}/, 1), 11 * 5 * 3);
});
