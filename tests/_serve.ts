/**
 * `monitor serve` as a process for tests: started on a free port, its address read from its log.
 *
 * @module
 */
import { type RunningMonitor, startMonitor, waitFor } from "./_cli.ts";

/** A running `monitor serve` and its base URL (`http://127.0.0.1:PORT`). */
export interface RunningServe {
  readonly base: string;
  readonly process: RunningMonitor;
  stop(): Promise<{ code: number; stderr: string }>;
}

/** Starts `monitor serve --listen 127.0.0.1:0` against `databaseUrl` and waits until it listens. */
export async function startServe(databaseUrl: string, args: string[] = []): Promise<RunningServe> {
  const process = startMonitor(["serve", "--listen", "127.0.0.1:0", ...args], { DATABASE_URL: databaseUrl });
  let base = "";
  try {
    await waitFor(
      () => {
        const match = /serving address=(http:\/\/127\.0\.0\.1:\d+)\//.exec(process.stderr.text);
        if (match) base = match[1]!;
        return base !== "";
      },
      20_000,
      "monitor serve to listen",
    );
  } catch (error) {
    const { stderr } = await process.stop();
    throw new Error(`${(error as Error).message}; its log:\n${stderr}`);
  }
  return { base, process, stop: () => process.stop() };
}

/** A GET of `path` from a running serve at `base`: its status, content type, headers and body. */
export async function getFrom(
  base: string,
  path: string,
): Promise<{ status: number; type: string; headers: Headers; text: string }> {
  const response = await fetch(base + path);
  return {
    status: response.status,
    type: response.headers.get("content-type") ?? "",
    headers: response.headers,
    text: await response.text(),
  };
}

/** Creates a login role that may only read (SELECT on every table and view) and returns its name. */
export async function createReadOnlyRole(
  admin: import("postgres").Sql,
  database: string,
): Promise<string> {
  const role = `monitor_read_${crypto.randomUUID().slice(0, 8)}`;
  await admin.unsafe(`create role ${role} login`);
  await admin.unsafe(`grant connect on database "${database}" to ${role}`);
  await admin.unsafe(`grant usage on schema public to ${role}`);
  await admin.unsafe(`grant select on all tables in schema public to ${role}`);
  return role;
}

/** Drops a role made by {@linkcode createReadOnlyRole} (after its database is gone). */
export async function dropRole(admin: import("postgres").Sql, role: string): Promise<void> {
  await admin.unsafe(`drop role if exists ${role}`);
}
