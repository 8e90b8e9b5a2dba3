/**
 * Kafka connection settings (brokers, TLS with client certificates, SASL) and the kafkajs client factory
 * shared by `check` and `sink`. Secrets come only from the environment or files and are never logged.
 *
 * @module
 */
import process from "node:process";
import { Kafka, type LogEntry, logLevel, type SASLOptions } from "kafkajs";
import { type FlagValues, type KAFKA_FLAGS, UsageError } from "./args.ts";
import type { Logger } from "./log.ts";
import { readKafkaTlsFiles } from "./kafka_pem.ts";

/** The default topic. */
export const DEFAULT_TOPIC = "monitor.checks";

/** SASL mechanisms kafkajs speaks that we support. */
export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";

/** Everything needed to reach the cluster. */
export interface KafkaSettings {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly clientId: string;
  /** TLS options (PEM contents), or null for PLAINTEXT. An empty object means TLS with the system CA store. */
  readonly tls: { readonly ca?: string; readonly cert?: string; readonly key?: string } | null;
  readonly sasl:
    | { readonly mechanism: SaslMechanism; readonly username: string; readonly password: string }
    | null;
}

/**
 * Builds {@linkcode KafkaSettings} from the Kafka flags. Returns null when no brokers are configured.
 * Reads certificate files and `MONITOR_SASL_PASSWORD` from the environment.
 */
export async function kafkaSettings(
  flags: FlagValues<typeof KAFKA_FLAGS>,
  env: Readonly<Record<string, string | undefined>>,
  clientId: string,
): Promise<KafkaSettings | null> {
  const topic = flags.topic ?? DEFAULT_TOPIC;
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
    throw new UsageError(
      `Cannot use flag '--topic': expected 1 to 249 letters, digits, '.', '_' or '-': got '${topic}'`,
    );
  }
  if (flags.brokers === undefined || flags.brokers.trim() === "") return null;
  const brokers = flags.brokers.split(",").map((broker) => broker.trim()).filter((broker) => broker !== "");
  for (const broker of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(broker)) {
      throw new UsageError(`Cannot use flag '--brokers': expected host:port[,host:port...]: got '${broker}'`);
    }
  }
  if ((flags["kafka-cert"] === undefined) !== (flags["kafka-key"] === undefined)) {
    throw new UsageError(
      "Cannot use TLS client authentication: '--kafka-cert' and '--kafka-key' go together",
    );
  }
  const tls = await readKafkaTlsFiles({
    ca: flags["kafka-ca"],
    cert: flags["kafka-cert"],
    key: flags["kafka-key"],
  });
  const sasl = saslSettings(flags, env);
  const useTls = flags["kafka-tls"] || Object.keys(tls).length > 0 || sasl !== null;
  return { brokers, topic, clientId, tls: useTls ? tls : null, sasl };
}

function saslSettings(
  flags: FlagValues<typeof KAFKA_FLAGS>,
  env: Readonly<Record<string, string | undefined>>,
): KafkaSettings["sasl"] {
  const mechanism = flags["sasl-mechanism"];
  if (mechanism === undefined) {
    if (flags["sasl-username"] !== undefined) {
      throw new UsageError("Cannot use SASL: '--sasl-username' needs '--sasl-mechanism'");
    }
    return null;
  }
  const lower = mechanism.toLowerCase();
  if (lower !== "plain" && lower !== "scram-sha-256" && lower !== "scram-sha-512") {
    throw new UsageError(
      `Cannot use flag '--sasl-mechanism': expected plain, scram-sha-256 or scram-sha-512: got '${mechanism}'`,
    );
  }
  const username = flags["sasl-username"];
  if (username === undefined) throw new UsageError("Cannot use SASL: '--sasl-username' is missing");
  const password = env.MONITOR_SASL_PASSWORD;
  if (password === undefined) {
    throw new UsageError("Cannot use SASL: the environment variable MONITOR_SASL_PASSWORD is not set");
  }
  return { mechanism: lower, username, password };
}

/** A one-line description of where we connect, with no secrets. */
export function describeKafka(settings: KafkaSettings): string {
  const security = settings.sasl
    ? `SASL_SSL ${settings.sasl.mechanism} as '${settings.sasl.username}'`
    : settings.tls
    ? settings.tls.cert ? "SSL with client certificate" : "SSL"
    : "PLAINTEXT";
  return `${settings.brokers.join(",")} (${security}), topic '${settings.topic}'`;
}

let negativeTimeoutWarningMuted = false;

/** Options of {@linkcode createKafka}. */
export interface CreateKafkaOptions {
  /** Retries of each request; default kafkajs's (5). The start-up check makes one attempt. */
  readonly retries?: number;
  /** How long to wait for a TCP and TLS connection; default 5 s. */
  readonly connectionTimeoutMs?: number;
  /** How long to wait for a broker's answer to a request (a hung broker holds it this long); default 30 s. */
  readonly requestTimeoutMs?: number;
}

/**
 * Creates a kafkajs client whose logs go to `log`, folded (see {@linkcode foldKafkaLogs}): kafkajs errors
 * become warnings, since the callers decide what is an error, and retry.
 */
export function createKafka(settings: KafkaSettings, log: Logger, options: CreateKafkaOptions = {}): Kafka {
  muteNegativeTimeoutWarning();
  const sasl: SASLOptions | undefined = settings.sasl
    ? {
      mechanism: settings.sasl.mechanism,
      username: settings.sasl.username,
      password: settings.sasl.password,
    } as SASLOptions
    : undefined;
  return new Kafka({
    clientId: settings.clientId,
    brokers: [...settings.brokers],
    ...(settings.tls ? { ssl: Object.keys(settings.tls).length > 0 ? { ...settings.tls } : true } : {}),
    ...(sasl ? { sasl } : {}),
    connectionTimeout: options.connectionTimeoutMs ?? 5_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    ...(options.retries === undefined ? {} : { retry: { retries: options.retries } }),
    logLevel: logLevel.WARN,
    logCreator: foldKafkaLogs(log),
  });
}

const FOLD_FIRST_MS = 1_000;
const FOLD_MAX_MS = 60_000;

/**
 * A kafkajs log creator that folds its repeats: kafkajs logs every failed connection attempt, retry and
 * restart, each with a stack trace, so one unreachable broker makes a dozen lines a second. Stack traces are
 * dropped; one condition (level, message and error) is logged once, then again only after a wait that
 * doubles from 1 s to 60 s while it repeats, like the backoff of the retries it reports, carrying how many
 * were folded (`repeated=N`); a condition quiet for a minute starts over.
 *
 * @example
 * ```ts
 * import { Kafka } from "kafkajs";
 * import { createLogger } from "./log.ts";
 * const log = createLogger({ format: "text" });
 * new Kafka({ brokers: ["127.0.0.1:9092"], logCreator: foldKafkaLogs(log) });
 * ```
 */
export function foldKafkaLogs(log: Logger, now: () => number = Date.now): () => (entry: LogEntry) => void {
  const seen = new Map<string, { next: number; windowMs: number; last: number; repeated: number }>();
  return () => (entry: LogEntry) => {
    const { message, ...fields } = entry.log;
    const extra = fields as Record<string, unknown>;
    delete extra.timestamp;
    delete extra.stack;
    delete extra.logger;
    const line = `kafka: ${message}`;
    // We bound each send's retries on purpose: the publisher retries the batch itself, with backoff.
    if (message.startsWith("Limiting retries for the idempotent producer")) return log.debug(line, extra);
    if (entry.level !== logLevel.ERROR && entry.level !== logLevel.WARN) return log.debug(line, extra);
    const key = `${entry.level}|${message}|${String(extra.error ?? "")}`;
    const time = now();
    const state = seen.get(key);
    if (state !== undefined && time - state.last < FOLD_MAX_MS && time < state.next) {
      state.last = time;
      state.repeated++;
      return;
    }
    const windowMs = state === undefined || time - state.last >= FOLD_MAX_MS
      ? FOLD_FIRST_MS
      : Math.min(state.windowMs * 2, FOLD_MAX_MS);
    const repeated = state?.repeated ?? 0;
    seen.set(key, { next: time + windowMs, windowMs, last: time, repeated: 0 });
    if (seen.size > 1_000) seen.clear(); // distinct conditions are few; this only bounds a pathological case
    log.warn(line, repeated > 0 ? { ...extra, repeated } : extra);
  };
}

/** Creates the topic when it does not exist. Returns true when it was created. */
export async function ensureTopic(kafka: Kafka, topic: string, partitions: number): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = await admin.listTopics();
    if (existing.includes(topic)) return false;
    return await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

// kafkajs computes some timer delays from clock differences that can come out negative; Node (and Deno's
// node compatibility layer) then clamp them to 1 ms and print a TimeoutNegativeWarning per call.
// The clamping is what kafkajs expects, so the warning is noise.
function muteNegativeTimeoutWarning(): void {
  if (negativeTimeoutWarningMuted) return;
  negativeTimeoutWarningMuted = true;
  const original = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const name = typeof warning === "string" ? rest[0] : warning.name;
    if (name === "TimeoutNegativeWarning") return;
    (original as (...args: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}
