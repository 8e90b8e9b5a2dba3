/**
 * Command-line flags and their environment variables, in one place: every flag has a variable so containers
 * and systemd units need no wrapper, a flag wins over its variable, and secrets come only from the
 * environment or files (DESIGN.md, "Command line").
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseDuration } from "./duration.ts";
import type { LogFormat } from "./log.ts";

/** A usage error: a bad flag or flag value. The CLI prints it with a hint and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * A sites.toml that cannot be read or is not valid; the message names the file, the line and the key,
 * e.g. `sites.toml:7: Cannot load site 'api': key 'interval' must be a duration such as "30s", "1m" or
 * "500ms": got "fast"`. The CLI maps it to exit code 2.
 */
export class ConfigError extends Error {
  /** Creates the error; `message` already holds the file and line. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Definition of one flag: its type and the environment variable that supplies it when absent. */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly env?: string;
  readonly short?: string;
}

/** Flags common to every subcommand. */
export const COMMON_FLAGS = {
  "log-format": { type: "string", env: "MONITOR_LOG_FORMAT" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const satisfies Record<string, FlagSpec>;

/** Flags that describe the Kafka connection, shared by `check` and `sink`. */
export const KAFKA_FLAGS = {
  brokers: { type: "string", env: "MONITOR_BROKERS" },
  topic: { type: "string", env: "MONITOR_TOPIC" },
  "kafka-tls": { type: "boolean", env: "MONITOR_KAFKA_TLS" },
  "kafka-ca": { type: "string", env: "MONITOR_KAFKA_CA" },
  "kafka-cert": { type: "string", env: "MONITOR_KAFKA_CERT" },
  "kafka-key": { type: "string", env: "MONITOR_KAFKA_KEY" },
  "sasl-mechanism": { type: "string", env: "MONITOR_SASL_MECHANISM" },
  "sasl-username": { type: "string", env: "MONITOR_SASL_USERNAME" },
} as const satisfies Record<string, FlagSpec>;

/** Flags that describe the database connection, shared by `sink` and `migrate`. */
export const DATABASE_FLAGS = {
  "database-url": { type: "string", env: "DATABASE_URL" },
  "database-ca": { type: "string", env: "MONITOR_DATABASE_CA" },
} as const satisfies Record<string, FlagSpec>;

/** Reads the database URL flag, which every command that uses the database requires. */
export function databaseUrl(value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new UsageError("Cannot connect to the database: set '--database-url' or DATABASE_URL");
  }
  return value;
}

/** The values of parsed flags: strings, booleans, or undefined when neither flag nor variable is set. */
export type FlagValues<S extends Record<string, FlagSpec>> = {
  readonly [K in keyof S]: S[K]["type"] extends "boolean" ? boolean : string | undefined;
};

/**
 * Parses `args` against `specs`, filling unset flags from their environment variables.
 * Rejects unknown flags, missing values and positional arguments with a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * const flags = parseFlags(["--topic", "t"], { ...KAFKA_FLAGS }, Deno.env.toObject());
 * ```
 */
export function parseFlags<S extends Record<string, FlagSpec>>(
  args: readonly string[],
  specs: S,
  env: Env,
): FlagValues<S> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (error) {
    throw new UsageError(cleanParseArgsMessage((error as Error).message));
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`Cannot parse arguments: unexpected argument '${parsed.positionals[0]}'`);
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(specs)) {
    let value = parsed.values[name];
    if (value === undefined && spec.env !== undefined) {
      const fromEnv = env[spec.env];
      if (fromEnv !== undefined && fromEnv !== "") {
        value = spec.type === "boolean" ? parseBooleanEnv(spec.env, fromEnv) : fromEnv;
      }
    }
    values[name] = spec.type === "boolean" ? value === true : value;
  }
  return values as FlagValues<S>;
}

function cleanParseArgsMessage(message: string): string {
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `Cannot parse arguments: unknown flag '${unknown[1]}'`;
  const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing) return `Cannot parse arguments: flag '${missing[1]}' needs a value`;
  return `Cannot parse arguments: ${message.split("\n")[0]}`;
}

function parseBooleanEnv(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new UsageError(`Cannot read environment variable ${name}: expected true or false: got '${value}'`);
}

/** Reads a positive integer flag, or its default. */
export function positiveInteger(flag: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min) {
    throw new UsageError(
      `Cannot use flag '--${flag}': expected a whole number of at least ${min}: got '${value}'`,
    );
  }
  return parsed;
}

/** Reads a duration flag ("30s", "500ms"), or its default, in milliseconds. */
export function durationFlag(flag: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  try {
    return parseDuration(value);
  } catch (error) {
    throw new UsageError(`Cannot use flag '--${flag}': ${(error as Error).message}`);
  }
}

/** Reads `--log-format`. */
export function logFormat(value: string | undefined): LogFormat {
  if (value === undefined || value === "text") return "text";
  if (value === "json") return "json";
  throw new UsageError(`Cannot use flag '--log-format': expected 'text' or 'json': got '${value}'`);
}
