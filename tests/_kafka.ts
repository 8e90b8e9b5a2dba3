/**
 * The real Kafka broker for tests: the shared one that `dev/kafka.sh start` runs (CI starts it), and private
 * brokers on other ports for fault tests that stop and start their own.
 *
 * @module
 */
import { BROKER, plainKafka } from "../dev/services.ts";

export { BROKER, createTopic, plainKafka } from "../dev/services.ts";

const root = new URL("..", import.meta.url).pathname;

const basePort = Number(BROKER.split(":").at(-1));
/** Its SSL (client certificate required) and SASL_SSL (SCRAM-SHA-512) listeners. */
export const SSL_BROKER = `127.0.0.1:${basePort + 1}`;
export const SASL_BROKER = `127.0.0.1:${basePort + 2}`;
/** Where the broker script keeps the CA, client certificate and key, and an unrelated CA. */
export const CERTS = `${root}.kafka/${basePort}/certs`;
export const SCRAM_USER = "monitor";
export const SCRAM_PASSWORD = "monitor-secret";

/** A decoded message read back from a topic. */
export interface ReadMessage {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: string | null;
}

/**
 * The offsets `group` has committed in Kafka for `topic` (what lag tools read), per partition, as kafkajs gives
 * them: decimal text, "-1" for a partition it never committed.
 */
export async function committedOffsets(topic: string, group: string): Promise<Map<number, string>> {
  const admin = plainKafka().admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return new Map(offsets!.partitions.map((p) => [p.partition, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads every message of `topic` from the beginning until `count` arrived or `timeoutMs` passed
 * (with a plain consumer that assigns partitions itself, so no group is involved).
 */
export async function readTopic(
  topic: string,
  count: number,
  timeoutMs = 20_000,
  brokers = BROKER,
): Promise<ReadMessage[]> {
  const kafka = plainKafka(brokers);
  const consumer = kafka.consumer({ groupId: `reader-${crypto.randomUUID()}` });
  const messages: ReadMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      consumer.run({
        eachMessage: ({ partition, message }) => {
          messages.push({
            partition,
            offset: message.offset,
            key: message.key === null ? null : message.key.toString(),
            value: message.value === null ? null : message.value.toString(),
          });
          if (messages.length >= count) {
            clearTimeout(timer);
            resolve();
          }
          return Promise.resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** A broker of a test's own, on its own ports and data folder, for fault tests. */
export interface PrivateBroker {
  readonly brokers: string;
  /** Its own CA, certificates and keys, made on first start (as `CERTS` for the shared broker). */
  readonly certs: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

async function script(command: string, env: Record<string, string>): Promise<void> {
  const output = await new Deno.Command("bash", {
    args: [`${root}dev/kafka.sh`, command],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`Cannot ${command} the private broker: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/**
 * Four consecutive free ports in 10000-19999: below the ephemeral range (Kafka does not reuse an address
 * in TIME_WAIT) and away from the shared brokers (9092, CI's 29092), so concurrent runs do not collide.
 */
function freePortBlock(): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * 2_500) * 4;
    const listeners: Deno.Listener[] = [];
    try {
      for (let i = 0; i < 4; i++) listeners.push(Deno.listen({ hostname: "127.0.0.1", port: base + i }));
      return base;
    } catch {
      // taken: try another block
    } finally {
      for (const listener of listeners) listener.close();
    }
  }
  throw new Error("Cannot find four free ports for a private broker in 50 attempts");
}

/**
 * Starts a private broker on four free ports (PLAINTEXT is the first); `extraConfig` lines are appended to
 * its server.properties (e.g. an authorizer); given as a function, it is called with the first port.
 */
export async function startPrivateBroker(
  options: { extraConfig?: string | ((port: number) => string) } = {},
): Promise<PrivateBroker> {
  const port = freePortBlock();
  const dir = await Deno.makeTempDir({ prefix: "monitor-kafka-" });
  const extraConfig = typeof options.extraConfig === "function"
    ? options.extraConfig(port)
    : options.extraConfig ?? "";
  const env = { KAFKA_PORT: String(port), KAFKA_DIR: dir, KAFKA_EXTRA_CONFIG: extraConfig };
  const broker: PrivateBroker = {
    brokers: `127.0.0.1:${port}`,
    certs: `${dir}/certs`,
    start: () => script("start", env),
    stop: () => script("stop", env),
    async destroy() {
      await script("stop", env).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  await broker.start();
  return broker;
}
