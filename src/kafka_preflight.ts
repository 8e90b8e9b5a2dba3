/**
 * The start-up check of the Kafka connection, shared by `check` and `sink`: one connection, one metadata
 * request for the topic (and, for the sink, one for its group), each tried once, and the failure sorted.
 * kafkajs retries everything the same way, so a wrong CA, a refused client certificate, a wrong SASL
 * password or a missing ACL would be retried forever with a stack trace per attempt; here they end the
 * program with one line that names the cause and the flag to fix. An unreachable broker is worth waiting
 * for, and a missing topic is named.
 *
 * @module
 */
import { isIP } from "node:net";
import tls from "node:tls";
import { Backoff, deadline, delay, isTimeout } from "./async.ts";
import { createKafka, type KafkaSettings } from "./kafka.ts";
import { type Logger, silentLogger } from "./log.ts";

/** What one attempt found. */
export type KafkaCondition =
  | { readonly kind: "ok" }
  /** Will not get better by waiting: the message names the cause and the flag to fix. */
  | { readonly kind: "permanent"; readonly message: string }
  /** The broker could not be reached (or did not answer): worth retrying. */
  | { readonly kind: "unreachable"; readonly message: string }
  | { readonly kind: "missing-topic"; readonly message: string };

/** Options of {@linkcode checkKafkaOnce} and {@linkcode waitForKafka}. */
export interface PreflightOptions {
  /** The agent publishes (a missing topic is fatal unless it creates it); the sink consumes (it waits). */
  readonly role: "agent" | "sink";
  /** The sink's consumer group, whose access is checked too. */
  readonly group?: string;
  /** The agent creates a missing topic (`--create-topic`). */
  readonly createTopic?: boolean;
  readonly log: Logger;
  /** Ends the waiting (shutdown). */
  readonly signal: AbortSignal;
  /** Bound of one attempt; default 10 s. */
  readonly attemptTimeoutMs?: number;
  /** Longest wait between attempts; default 15 s. */
  readonly maxBackoffMs?: number;
}

interface ErrorLink {
  readonly name: string;
  readonly type: string;
  readonly code: string;
  readonly message: string;
}

/** The error and what it wraps (kafkajs puts the original error in `cause` or `originalError`). */
function chain(error: unknown): ErrorLink[] {
  const links: ErrorLink[] = [];
  for (let link = error as Record<string, unknown> | undefined; link && links.length < 5;) {
    links.push({
      name: String(link.name ?? ""),
      type: String(link.type ?? ""),
      code: String(link.code ?? ""),
      message: String(link.message ?? link),
    });
    link = (link.cause ?? link.originalError) as Record<string, unknown> | undefined;
  }
  return links;
}

const UNTRUSTED = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/;
const REFUSED_HANDSHAKE = /ALERT|alert/;
const AUTHORIZATION = /^(TOPIC|GROUP|CLUSTER)_AUTHORIZATION_FAILED$/;

/**
 * Sorts an error of the Kafka client into a {@linkcode KafkaCondition}, with a message for people.
 *
 * @example
 * ```ts
 * const settings = { brokers: ["kafka:9093"], topic: "t", clientId: "c", tls: {}, sasl: null };
 * const error = { name: "KafkaJSConnectionError", code: "SELF_SIGNED_CERT_IN_CHAIN", message: "self-signed" };
 * classifyKafkaError(error, settings).kind; // "permanent"
 * ```
 */
export function classifyKafkaError(
  error: unknown,
  settings: KafkaSettings,
  role: PreflightOptions["role"] = "agent",
): KafkaCondition {
  const links = chain(error);
  const last = links.at(-1) ?? { name: "", type: "", code: "", message: String(error) };
  const where = settings.brokers.join(",");
  const at = `Cannot connect to Kafka at ${where}`;
  const detail = last.message.replace(/^Connection error: /, "");
  const sasl = links.find((link) =>
    link.name === "KafkaJSSASLAuthenticationError" ||
    link.type === "SASL_AUTHENTICATION_FAILED" || link.type === "ILLEGAL_SASL_STATE" ||
    link.type === "UNSUPPORTED_SASL_MECHANISM"
  );
  if (sasl !== undefined) {
    const who = settings.sasl ? ` as '${settings.sasl.username}'` : "";
    return {
      kind: "permanent",
      message: `${at}: SASL authentication${who} failed (${sasl.message.replace(/^.*?: /, "")}): check ` +
        "'--sasl-username', '--sasl-mechanism' and MONITOR_SASL_PASSWORD",
    };
  }
  const denied = links.find((link) => AUTHORIZATION.test(link.type));
  if (denied !== undefined) {
    const who = settings.sasl ? `user '${settings.sasl.username}'` : "this client";
    const what = denied.type.startsWith("TOPIC")
      ? `topic '${settings.topic}'`
      : denied.type.startsWith("GROUP")
      ? "the consumer group"
      : "the cluster";
    const flag = denied.type.startsWith("GROUP") ? "'--group'" : "'--topic'";
    return {
      kind: "permanent",
      message: `${at}: ${who} is not authorized to use ${what} (${denied.type}): grant it the ACLs, or ` +
        `check ${flag} and '--sasl-username'`,
    };
  }
  if (links.some((link) => link.type === "UNKNOWN_TOPIC_OR_PARTITION")) {
    const hint = role === "agent" ? ": create it, or pass '--create-topic'" : "";
    const verb = role === "agent" ? "publish to" : "consume from";
    return {
      kind: "missing-topic",
      message: `Cannot ${verb} Kafka at ${where}: topic '${settings.topic}' does not exist${hint}`,
    };
  }
  const refused = links.find((link) => link.code.startsWith("ERR_SSL") && REFUSED_HANDSHAKE.test(link.code));
  if (refused !== undefined) {
    const fix = settings.tls?.cert === undefined
      ? "the broker may require a client certificate: set '--kafka-cert' and '--kafka-key'"
      : "check '--kafka-cert' and '--kafka-key' (the broker's CA must have signed the certificate)";
    return { kind: "permanent", message: `${at}: the broker refused the TLS handshake (${detail}): ${fix}` };
  }
  const tls = links.find((link) => UNTRUSTED.test(link.code));
  if (tls !== undefined) {
    const fix = settings.tls?.ca === undefined
      ? "set '--kafka-ca' to the CA that signed it"
      : "check '--kafka-ca' (it must be the CA that signed the broker's certificate)";
    return {
      kind: "permanent",
      message: `${at}: the broker's certificate is not trusted (${detail}): ${fix}`,
    };
  }
  return { kind: "unreachable", message: `${at}: ${detail}` };
}

/**
 * Connects once, asks for the topic's metadata (and the sink's group), and says what it found. Never throws
 * for a Kafka failure; throws the signal's reason when `options.signal` aborts.
 */
export async function checkKafkaOnce(
  settings: KafkaSettings,
  options: PreflightOptions,
): Promise<KafkaCondition> {
  if (settings.tls !== null) {
    const refused = await tlsHandshake(settings, options.signal);
    if (refused !== null) {
      const condition = classifyKafkaError(refused, settings, options.role);
      if (condition.kind === "permanent") return condition;
    }
  }
  return await attemptOnce(settings, options);
}

/** How long a finished handshake is watched for the broker's alert. */
const ALERT_WAIT_MS = 300;

/**
 * A TLS handshake with the first broker, watched a moment for the broker's alert. A broker that refuses the
 * client's certificate does so after the TLS 1.3 handshake has completed on the client's side, so kafkajs's
 * first request may fail with "write after end" before the alert is read (2 attempts in 20 here); a
 * handshake alone reads it every time. Resolves with the error, or null.
 */
function tlsHandshake(settings: KafkaSettings, signal: AbortSignal): Promise<Error | null> {
  const broker = settings.brokers[0]!;
  const split = broker.lastIndexOf(":");
  const host = broker.slice(0, split).replace(/^\[|\]$/g, "");
  const port = Number(broker.slice(split + 1));
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...settings.tls,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (error: Error | null) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", abort);
      socket.destroy();
      resolve(error);
    };
    const abort = () => done(null);
    signal.addEventListener("abort", abort, { once: true });
    socket.setTimeout(10_000, () => done(null)); // silence is kafkajs's to report
    socket.once("secureConnect", () => timer = setTimeout(() => done(null), ALERT_WAIT_MS));
    socket.once("error", (error) => done(error));
    socket.once("close", () => done(null));
  });
}

async function attemptOnce(settings: KafkaSettings, options: PreflightOptions): Promise<KafkaCondition> {
  // The attempt's own failures are sorted here; kafkajs's log lines about them would only repeat them.
  const kafka = createKafka(settings, silentLogger, { retries: 0 });
  const admin = kafka.admin({ retry: { retries: 0 } });
  const timeoutMs = options.attemptTimeoutMs ?? 10_000;
  const attempt = async () => {
    await admin.connect();
    await admin.fetchTopicMetadata({ topics: [settings.topic] });
    if (options.group !== undefined) await admin.describeGroups([options.group]);
  };
  try {
    await deadline(attempt(), timeoutMs, { signal: options.signal });
    return { kind: "ok" };
  } catch (error) {
    if (options.signal.aborted) throw options.signal.reason;
    if (isTimeout(error)) {
      return {
        kind: "unreachable",
        message: `Cannot connect to Kafka at ${settings.brokers.join(",")}: no answer within ${timeoutMs} ms`,
      };
    }
    return classifyKafkaError(error, settings, options.role);
  } finally {
    await deadline(admin.disconnect(), 2_000).catch(() => {});
  }
}

/**
 * Waits until Kafka is usable: retries an unreachable broker (and, for the sink, a missing topic) with
 * backoff, saying so once per attempt, and throws an `Error` with the message of a permanent condition (and,
 * for the agent, of a missing topic it does not create). Returns false when `options.signal` aborted first.
 *
 * @example
 * ```ts
 * import { kafkaSettings } from "./kafka.ts";
 * import { createLogger } from "./log.ts";
 * const settings = await kafkaSettings({ brokers: "127.0.0.1:9092" } as never, {}, "monitor-sink");
 * const shutdown = new AbortController();
 * const log = createLogger({ format: "text" });
 * const ready = await waitForKafka(settings!, { role: "sink", group: "monitor-sink", log, signal: shutdown.signal });
 * ```
 *
 * @param first What an attempt already made found, so the loop starts with its wait.
 */
export async function waitForKafka(
  settings: KafkaSettings,
  options: PreflightOptions,
  first?: KafkaCondition,
): Promise<boolean> {
  const backoff = new Backoff({ minTimeout: 1_000, maxTimeout: options.maxBackoffMs ?? 15_000 });
  let condition = first;
  for (;;) {
    if (options.signal.aborted) return false;
    if (condition === undefined) {
      try {
        condition = await checkKafkaOnce(settings, options);
      } catch {
        return false; // aborted
      }
    }
    if (isReady(condition, options)) return true;
    const wait = backoff.next();
    if (condition.kind === "missing-topic") {
      options.log.warn("waiting for the topic to exist", { topic: settings.topic, retry_in_ms: wait });
    } else if (condition.kind === "unreachable") {
      options.log.warn("cannot reach Kafka; will retry", { error: condition.message, retry_in_ms: wait });
    }
    await delay(wait, { signal: options.signal }).catch(() => {});
    condition = undefined;
  }
}

/**
 * Whether `condition` lets the program go on; throws an `Error` with its message when it is fatal for this
 * role, returns false when it is worth waiting for.
 */
export function isReady(
  condition: KafkaCondition,
  options: Pick<PreflightOptions, "role" | "createTopic">,
): boolean {
  switch (condition.kind) {
    case "ok":
      return true;
    case "permanent":
      throw new Error(condition.message);
    case "missing-topic":
      if (options.role === "sink") return false;
      if (options.createTopic) return true;
      throw new Error(condition.message);
    case "unreachable":
      return false;
  }
}
