/**
 * Command-line flags and their environment variables, in one place: every flag that configures a running
 * command has a variable so containers and systemd units need no wrapper, a flag wins over its variable, and
 * secrets come only from the environment or files. Each table carries its help text, from which every
 * command's help is made.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseDuration } from "./duration.ts";
import type { LogFormat, LoggerOptions, LogLevel } from "./log.ts";

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

/** How {@linkcode parseFlags} reads one flag: its type, its short form, and the variable that supplies it. */
export interface FlagParse {
  readonly type: "string" | "boolean";
  readonly env?: string;
  readonly short?: string;
}

/** One flag of a command: how it is parsed, and its line of help (which is made from this, never typed twice). */
export interface FlagSpec extends FlagParse {
  /** What the flag does; the help adds the variable and the default after it. */
  readonly description: string;
  /** The value's placeholder in help (`FILE`, `DUR`), for string flags. */
  readonly arg?: string;
  /** The default, as the help shows it. */
  readonly default?: string;
}

/** A titled block of a command's help: flags, and variables that have no flag (secrets). */
export interface HelpSection {
  readonly title: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly variables?: Readonly<Record<string, string>>;
}

/** Flags common to every subcommand. */
export const COMMON_FLAGS = {
  "log-format": {
    type: "string",
    env: "MONITOR_LOG_FORMAT",
    arg: "FORMAT",
    description: "text or json",
    default: "text",
  },
  "log-level": {
    type: "string",
    env: "MONITOR_LOG_LEVEL",
    arg: "LEVEL",
    description: "debug, info, warn or error",
    default: "info",
  },
  help: { type: "boolean", short: "h", description: "show this help" },
  version: { type: "boolean", description: "show the version" },
} as const satisfies Record<string, FlagSpec>;

/** The help section of {@linkcode COMMON_FLAGS}. */
export const COMMON_SECTION: HelpSection = { title: "COMMON", flags: COMMON_FLAGS };

/** Flags that describe the Kafka connection, shared by `check` and `sink`. */
export const KAFKA_FLAGS = {
  brokers: { type: "string", env: "MONITOR_BROKERS", arg: "H:P,...", description: "bootstrap brokers" },
  topic: {
    type: "string",
    env: "MONITOR_TOPIC",
    arg: "NAME",
    description: "topic",
    default: "monitor.checks",
  },
  "kafka-tls": {
    type: "boolean",
    env: "MONITOR_KAFKA_TLS",
    description: "use TLS with the system CA store (implied by the flags below and by SASL)",
  },
  "kafka-ca": { type: "string", env: "MONITOR_KAFKA_CA", arg: "FILE", description: "CA certificate, PEM" },
  "kafka-cert": {
    type: "string",
    env: "MONITOR_KAFKA_CERT",
    arg: "FILE",
    description: "client certificate, PEM",
  },
  "kafka-key": { type: "string", env: "MONITOR_KAFKA_KEY", arg: "FILE", description: "client key, PEM" },
  "sasl-mechanism": {
    type: "string",
    env: "MONITOR_SASL_MECHANISM",
    arg: "M",
    description: "plain, scram-sha-256 or scram-sha-512",
  },
  "sasl-username": { type: "string", env: "MONITOR_SASL_USERNAME", arg: "U", description: "SASL user name" },
} as const satisfies Record<string, FlagSpec>;

/** The help section of {@linkcode KAFKA_FLAGS}; commands may retitle it. */
export const KAFKA_SECTION: HelpSection = {
  title: "KAFKA",
  flags: KAFKA_FLAGS,
  variables: { MONITOR_SASL_PASSWORD: "SASL password (only from the environment)" },
};

/** Flags that describe the database connection, shared by `sink` and `migrate`. */
export const DATABASE_FLAGS = {
  "database-url": {
    type: "string",
    env: "DATABASE_URL",
    arg: "URL",
    description: "PostgreSQL URL (required), e.g. postgres://monitor@db:5432/monitor?sslmode=verify-full",
  },
  "database-ca": {
    type: "string",
    env: "MONITOR_DATABASE_CA",
    arg: "FILE",
    description: "CA certificate for sslmode=verify-ca/verify-full, PEM",
  },
} as const satisfies Record<string, FlagSpec>;

/** The help section of {@linkcode DATABASE_FLAGS}. */
export const DATABASE_SECTION: HelpSection = { title: "DATABASE", flags: DATABASE_FLAGS };

/**
 * Flags of the commands that keep running (`check`, `sink`): how often they log a summary line, and where they
 * serve their metrics; `metricsExample` is the address the help suggests.
 */
export function runningFlags(metricsExample: string) {
  return {
    "summary-every": {
      type: "string",
      env: "MONITOR_SUMMARY_EVERY",
      arg: "DUR",
      description: "how often the summary line is logged",
      default: "60s",
    },
    metrics: {
      type: "string",
      env: "MONITOR_METRICS",
      arg: "HOST:PORT",
      description: `serve Prometheus metrics on /metrics and health on /healthz, e.g. ${metricsExample}`,
      default: "off",
    },
  } as const satisfies Record<string, FlagSpec>;
}

/** The values of parsed flags: strings, booleans, or undefined when neither flag nor variable is set. */
export type FlagValues<S extends Record<string, FlagParse>> = {
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
export function parseFlags<S extends Record<string, FlagParse>>(
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

const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, KiB: 1024, MiB: 1024 * 1024 };

/** Reads a size flag in bytes ("512KiB", "4MiB", "65536"), or its default, with a lower bound. */
export function byteSize(flag: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const match = /^(\d+)(KiB|MiB)?$/.exec(value.trim());
  const bytes = match === null ? NaN : Number(match[1]) * (SIZE_UNITS[match[2] ?? ""] ?? NaN);
  if (!Number.isSafeInteger(bytes) || bytes < min || bytes >= 2 ** 31) {
    throw new UsageError(
      `Cannot use flag '--${flag}': expected a size such as "512KiB" or "4MiB", from ${min} bytes to ` +
        `2047MiB: got '${value}'`,
    );
  }
  return bytes;
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

/** Reads `--log-level`. */
export function logLevel(value: string | undefined): LogLevel {
  if (value === undefined) return "info";
  if (value === "debug" || value === "info" || value === "warn" || value === "error") return value;
  throw new UsageError(
    `Cannot use flag '--log-level': expected 'debug', 'info', 'warn' or 'error': got '${value}'`,
  );
}

/** The logger options of the common flags: `--log-format` and `--log-level`. */
export function logOptions(flags: FlagValues<typeof COMMON_FLAGS>): LoggerOptions {
  return { format: logFormat(flags["log-format"]), level: logLevel(flags["log-level"]) };
}
