/**
 * Runs `main.ts` as a process, with the permissions the compiled binary gets, for CLI tests.
 *
 * @module
 */
import { delay } from "../src/async.ts";
import { PERMISSIONS } from "../dev/permissions.ts";

const root = new URL("..", import.meta.url).pathname;

export { PERMISSIONS } from "../dev/permissions.ts";

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
export function runMonitor(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  return finish(spawnMonitor(args, env));
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

/** A long-running `monitor` (an agent or a sink) whose stderr is read as it comes. */
export interface RunningMonitor {
  readonly child: Deno.ChildProcess;
  /** What it logged so far. */
  readonly stderr: { text: string };
  /** Sends `signal` (default SIGTERM), waits for the exit, and returns the code and all of stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
}

/** Starts `monitor ARGS` and keeps reading its stderr. */
export function startMonitor(args: string[], env: Record<string, string> = {}): RunningMonitor {
  const child = spawnMonitor(args, env);
  const stderr = { text: "" };
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr.text += decoder.decode(chunk, { stream: true });
  })();
  return {
    child,
    stderr,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // it has exited already
      }
      const status = await child.status;
      await reading;
      await child.stdout.cancel().catch(() => {});
      return { code: status.code, stderr: stderr.text };
    },
  };
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
    await delay(100);
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}
