/**
 * `monitor`: website-availability monitoring. `monitor check` probes sites and publishes the results to
 * Kafka; `monitor sink` stores them in PostgreSQL; `monitor migrate` prepares the database; `monitor serve`
 * and `monitor status` show what it holds.
 *
 * This is the only module that prints usage, maps errors to exit codes and calls `Deno.exit`:
 * 0 success, 1 a failure at run time (or a site down with `check --once`), 2 a usage or configuration error.
 *
 * @module
 */
import { ConfigError, UsageError } from "./src/args.ts";
import { VERSION } from "./src/version.ts";

const USAGE = `monitor ${VERSION}: website availability monitoring with Kafka and PostgreSQL

USAGE:
  monitor <COMMAND> [OPTIONS]

COMMANDS:
  check     probe the sites of a sites file and publish every result to Kafka
  sink      consume the results from Kafka and store them in PostgreSQL
  migrate   create or upgrade the database schema, then exit
  serve     serve the status page, JSON API, badges and per-site metrics over HTTP
  status    print every site's state and uptime in the terminal; exit 1 if any is not up

OPTIONS:
  -h, --help   show this help (and 'monitor <COMMAND> --help' for a command's options)
  --version    show the version

Every option has an environment variable; see each command's help. Exit codes: 0 success, 1 a failure at
run time, a site down with 'check --once' or a site not up with 'status', 2 a usage or configuration error.
`;

type Command = (
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  shutdown: AbortSignal,
) => Promise<number>;

// Loaded on demand: the agent never loads the database driver, nor the sink the prober.
const COMMANDS: Record<string, () => Promise<Command>> = {
  check: () => import("./src/check/command.ts").then((module) => module.checkCommand),
  sink: () => import("./src/sink/command.ts").then((module) => module.sinkCommand),
  migrate: () => import("./src/sink/migrate_command.ts").then((module) => module.migrateCommand),
  serve: () => import("./src/serve/command.ts").then((module) => module.serveCommand),
  status: () => import("./src/serve/status_command.ts").then((module) => module.statusCommand),
};

/** Runs the program with `args` and returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    await Deno.stdout.write(new TextEncoder().encode(USAGE));
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    console.log(`monitor ${VERSION}`);
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    console.error(
      `monitor: Cannot run command '${name}': it does not exist (check, sink, migrate, serve or status)`,
    );
    console.error("Run 'monitor --help' for usage.");
    return 2;
  }
  const shutdown = new AbortController();
  const stop = () => shutdown.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    const command = await load();
    return await command(rest, Deno.env.toObject(), shutdown.signal);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`monitor ${name}: ${error.message}`);
      console.error(`Run 'monitor ${name} --help' for usage.`);
      return 2;
    }
    if (error instanceof ConfigError) {
      console.error(`monitor ${name}: ${error.message}`);
      return 2;
    }
    console.error(`monitor ${name}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
