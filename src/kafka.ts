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
  const tls: { ca?: string; cert?: string; key?: string } = {};
  if (flags["kafka-ca"] !== undefined) tls.ca = await readPem("kafka-ca", flags["kafka-ca"]);
  if (flags["kafka-cert"] !== undefined) tls.cert = await readPem("kafka-cert", flags["kafka-cert"]);
  if (flags["kafka-key"] !== undefined) tls.key = await readPem("kafka-key", flags["kafka-key"]);
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

async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read '--${flag}' file '${path}': ${(error as Error).message}`);
  }
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

/**
 * Creates a kafkajs client whose logs go to `log` (kafkajs errors become warnings: the callers decide what
 * is an error, and retry).
 */
export function createKafka(settings: KafkaSettings, log: Logger): Kafka {
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
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...fields } = entry.log;
      delete (fields as Record<string, unknown>).timestamp;
      const line = `kafka: ${message}`;
      // We bound each send's retries on purpose: the publisher retries the batch itself, with backoff.
      if (message.startsWith("Limiting retries for the idempotent producer")) log.debug(line, fields);
      else if (entry.level === logLevel.ERROR || entry.level === logLevel.WARN) log.warn(line, fields);
      else log.debug(line, fields);
    },
  });
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
