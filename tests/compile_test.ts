/**
 * `deno task compile` (dev/compile.sh) builds a binary that carries what main.ts does not import: the
 * migrations and every worker module. `deno compile` itself cannot run here (its runtime is downloaded from
 * dl.deno.land), so the script runs with a `deno` on PATH that only records the command line it was given.
 */
import { assertEquals } from "./_assert.ts";
import { PUBLISHER_WORKER_URL } from "../src/check/publisher_client.ts";
import { PATTERN_WORKER_URL } from "../src/check/pattern_workers.ts";
import { PERMISSIONS } from "../dev/permissions.ts";

const ROOT = new URL("..", import.meta.url);

/** Runs dev/compile.sh with a recording `deno`; returns the arguments `deno compile` got. */
async function compileArguments(): Promise<string[]> {
  const bin = await Deno.makeTempDir({ prefix: "monitor-compile-test-" });
  try {
    // Prints its arguments one per line and fails with a message the script passes on as it is.
    await Deno.writeTextFile(`${bin}/deno`, '#!/usr/bin/env bash\nprintf "ARG %s\\n" "$@"\nexit 1\n');
    await Deno.chmod(`${bin}/deno`, 0o755);
    const output = await new Deno.Command("bash", {
      args: ["dev/compile.sh"],
      cwd: ROOT,
      env: { PATH: `${bin}:${Deno.env.get("PATH")}` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(output.code, 1);
    return new TextDecoder().decode(output.stderr).split("\n").filter((line) => line.startsWith("ARG "))
      .map((line) => line.slice(4));
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
}

/** The files under src/ that start a worker. */
async function workerStarters(dir = new URL("../src/", import.meta.url)): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) found.push(...await workerStarters(url));
    else if (entry.name.endsWith(".ts") && (await Deno.readTextFile(url)).includes("new Worker(")) {
      found.push(url.pathname.slice(ROOT.pathname.length));
    }
  }
  return found.sort();
}

Deno.test("deno task compile includes the workers, the migrations, and the permissions", async () => {
  const workers = [PATTERN_WORKER_URL, PUBLISHER_WORKER_URL].map((url) =>
    url.pathname.slice(ROOT.pathname.length)
  );
  assertEquals(workers, ["src/check/pattern_worker.ts", "src/check/publisher_worker.ts"]);
  assertEquals(await compileArguments(), [
    "compile",
    ...PERMISSIONS,
    "--include",
    "sql",
    ...workers.map((worker) => `--include=${worker}`),
    "--output",
    "dist/monitor",
    "main.ts",
  ]);
});

Deno.test("the modules that start a worker are the two known ones (each worker must be in WORKERS)", async () => {
  assertEquals(await workerStarters(), ["src/check/pattern_workers.ts", "src/check/publisher_client.ts"]);
});
