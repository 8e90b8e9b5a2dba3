/**
 * Runs `main.ts` as a process, with the permissions the compiled binary gets, for CLI tests.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;

/** The permissions of `deno task compile` (dev/permissions.sh). */
export const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys"];

/** What a finished process left. */
export interface Finished {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of a CLI test: nothing from the caller's MONITOR_* or DATABASE_URL leaks in. */
function cleanEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(Deno.env.toObject())) {
    if (!key.startsWith("MONITOR_") && key !== "DATABASE_URL") base[key] = value;
  }
  return { ...base, NO_COLOR: "1", ...env };
}

/** Runs `monitor ARGS` to completion. */
export async function runMonitor(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, `${root}main.ts`, ...args],
    cwd: root,
    env: cleanEnv(env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** Starts `monitor ARGS` in the background; the caller signals and awaits it. */
export function spawnMonitor(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, `${root}main.ts`, ...args],
    cwd: root,
    env: cleanEnv(env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Collects a child's output and exit code. */
export async function finish(child: Deno.ChildProcess): Promise<Finished> {
  const output = await child.output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** Writes `text` to a new temporary file and returns its path. */
export async function tempFile(text: string, suffix = ".toml"): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "monitor-test-", suffix });
  await Deno.writeTextFile(path, text);
  return path;
}

/** Waits until `predicate` holds, checking every 100 ms, for at most `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}
