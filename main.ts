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
import { type CommandDefinition, formatHelp } from "./src/help.ts";
import { VERSION } from "./src/version.ts";

/** One subcommand: loaded on demand, so that the agent never loads the database driver, nor the sink the prober. */
export interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<CommandDefinition>;
}

/** The subcommands, in the order the usage lists them. */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  check: {
    summary: "probe the sites of a sites file and publish every result to Kafka",
    load: () => import("./src/check/command.ts").then((module) => module.CHECK_COMMAND),
  },
  sink: {
    summary: "consume the results from Kafka and store them in PostgreSQL",
    load: () => import("./src/sink/command.ts").then((module) => module.SINK_COMMAND),
  },
  migrate: {
    summary: "create or upgrade the database schema, then exit",
    load: () => import("./src/sink/migrate_command.ts").then((module) => module.MIGRATE_COMMAND),
  },
  retire: {
    summary: "remove a site no longer probed from the status page, keeping its history",
    load: () => import("./src/sink/retire_command.ts").then((module) => module.RETIRE_COMMAND),
  },
  serve: {
    summary: "serve the status page, JSON API, badges and per-site metrics over HTTP",
    load: () => import("./src/serve/command.ts").then((module) => module.SERVE_COMMAND),
  },
  status: {
    summary: "print every site's state and uptime in the terminal; exit 1 if any is not up",
    load: () => import("./src/serve/status_command.ts").then((module) => module.STATUS_COMMAND),
  },
};

const NAMES = Object.keys(COMMANDS);

const USAGE = `monitor ${VERSION}: website availability monitoring with Kafka and PostgreSQL

USAGE:
  monitor <COMMAND> [OPTIONS]
  monitor help <COMMAND>

COMMANDS:
${NAMES.map((name) => `  ${name.padEnd(10)}${COMMANDS[name]!.summary}`).join("\n")}

OPTIONS:
  -h, --help   show this help (and 'monitor <COMMAND> --help' for a command's options)
  --version    show the version

Every option that configures a running command has an environment variable; see each command's help.
Exit codes: 0 success, 1 a failure at run time (a site down with 'check --once', results left undelivered, a
Kafka error that waiting cannot fix), 2 a usage or configuration error.
`;

const encoder = new TextEncoder();

async function print(text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let written = 0; written < bytes.length;) written += await Deno.stdout.write(bytes.subarray(written));
}

function unknownCommand(name: string): number {
  const known = NAMES.length > 1 ? `${NAMES.slice(0, -1).join(", ")} or ${NAMES.at(-1)}` : NAMES.join("");
  console.error(`monitor: Cannot run command '${name}': it does not exist (${known})`);
  console.error("Run 'monitor --help' for usage.");
  return 2;
}

/** Runs the program with `args` and returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help") {
    await print(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    console.log(`monitor ${VERSION}`);
    return 0;
  }
  if (name === "help") {
    const topic = rest[0];
    if (topic === undefined) {
      await print(USAGE);
      return 0;
    }
    const entry = COMMANDS[topic];
    if (entry === undefined) return unknownCommand(topic);
    await print(formatHelp((await entry.load()).help));
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) return unknownCommand(name);
  const command = await entry.load();
  // Answered before anything else: no flag is checked, no file read, nothing connected.
  if (rest.includes("-h") || rest.includes("--help")) {
    await print(formatHelp(command.help));
    return 0;
  }
  if (rest.includes("--version")) {
    console.log(`monitor ${VERSION}`);
    return 0;
  }
  const shutdown = new AbortController();
  const stop = () => shutdown.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    return await command.run(rest, Deno.env.toObject(), shutdown.signal);
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
