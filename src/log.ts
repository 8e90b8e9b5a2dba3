/**
 * A small structured logger: human-readable lines by default, one JSON object per line with
 * `--log-format json`. Everything goes to stderr, so stdout stays free for results (NDJSON, `--once`).
 *
 * @module
 */

/** Log output format. */
export type LogFormat = "text" | "json";

/** Extra structured fields of a log line. */
export type LogFields = { readonly [key: string]: unknown };

/**
 * What every module takes instead of printing. `at` is when it happened (milliseconds since the epoch), for a
 * line made elsewhere and written later, such as the publisher worker's; default now.
 */
export interface Logger {
  debug(message: string, fields?: LogFields, at?: number): void;
  info(message: string, fields?: LogFields, at?: number): void;
  warn(message: string, fields?: LogFields, at?: number): void;
  error(message: string, fields?: LogFields, at?: number): void;
}

/** Log levels, from the least to the most important. */
export type LogLevel = "debug" | "info" | "warn" | "error";
type Level = LogLevel;

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  readonly format: LogFormat;
  /** Lines below this level are dropped. Default "info"; `MONITOR_LOG_LEVEL=debug` shows more. */
  readonly level?: Level;
  /** Where lines go; default stderr. */
  readonly write?: (line: string) => void;
}

const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const encoder = new TextEncoder();

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ format: "json" });
 * log.info("published", { count: 3 });
 * ```
 */
export function createLogger(options: LoggerOptions): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const emit = (level: Level, message: string, fields: LogFields = {}, at = Date.now()) => {
    if (RANK[level] < min) return;
    const time = new Date(at).toISOString();
    if (options.format === "json") {
      write(JSON.stringify({ time, level, message, ...fields }));
      return;
    }
    const extras = Object.entries(fields).map(([key, value]) => `${key}=${formatValue(value)}`);
    write([time, level.toUpperCase().padEnd(5), message, ...extras].join(" "));
  };
  return {
    debug: (message, fields, at) => emit("debug", message, fields, at),
    info: (message, fields, at) => emit("info", message, fields, at),
    warn: (message, fields, at) => emit("warn", message, fields, at),
    error: (message, fields, at) => emit("error", message, fields, at),
  };
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value) ?? String(value);
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
