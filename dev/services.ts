/**
 * The local services that the tests and the benchmarks run against: a throwaway database on the machine's
 * PostgreSQL, and a kafkajs client and fresh topics on the broker of `dev/kafka.sh`.
 *
 * @module
 */
import postgres from "postgres";
import { Kafka, logLevel } from "kafkajs";

/** The shared server's admin URL: `DATABASE_URL`, else the machine's PostgreSQL on 127.0.0.1:5432. */
export const ADMIN_URL = Deno.env.get("TEST_DATABASE_URL") ??
  `postgres://${Deno.env.get("PGUSER") ?? "postgres"}@${Deno.env.get("PGHOST") ?? "127.0.0.1"}:${
    Deno.env.get("PGPORT") ?? "5432"
  }/${Deno.env.get("PGDATABASE") ?? "postgres"}`;

/** A database made for one test file. */
export interface TestDatabase {
  /** Its connection URL. */
  readonly url: string;
  readonly name: string;
  /** A client on it (closed by `drop`). */
  readonly sql: postgres.Sql;
  /** Closes the client and drops the database. */
  drop(): Promise<void>;
}

async function ensureServer(url: string): Promise<void> {
  const probe = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await probe`select 1`;
    return;
  } catch {
    // Down: start the machine's cluster, as the environment documents.
  } finally {
    await probe.end({ timeout: 1 });
  }
  const versions = [...Deno.readDirSync("/etc/postgresql")].map((entry) => entry.name);
  for (const version of versions) {
    await new Deno.Command("pg_ctlcluster", {
      args: ["--skip-systemctl-redirect", version, "main", "start"],
      stdout: "null",
      stderr: "null",
    }).output();
  }
}

/** Creates a fresh, uniquely named database on the shared server. */
export async function createTestDatabase(prefix = "monitor_test"): Promise<TestDatabase> {
  await ensureServer(ADMIN_URL);
  const name = `${prefix}_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`.toLowerCase();
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const target = new URL(ADMIN_URL);
  target.pathname = `/${name}`;
  const url = target.toString();
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  return {
    url,
    name,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}

/** The shared broker's PLAINTEXT address. */
export const BROKER = Deno.env.get("TEST_KAFKA_BROKERS") ?? "127.0.0.1:9092";
/** A kafkajs client on the shared broker's PLAINTEXT listener. */
export function plainKafka(brokers = BROKER): Kafka {
  return new Kafka({ clientId: "monitor-test", brokers: [brokers], logLevel: logLevel.NOTHING });
}

/** Creates a uniquely named topic and returns its name. */
export async function createTopic(prefix: string, partitions = 1, brokers = BROKER): Promise<string> {
  const topic = `${prefix}-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 6)}`;
  const admin = plainKafka(brokers).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}
