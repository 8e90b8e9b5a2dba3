/**
 * The fixtures of the agent benchmark: the broker (started when down, never stopped), the target server
 * process, the generated sites files, and the topic read-back.
 *
 * @module
 */
import { deadline, isTimeout } from "../../src/async.ts";
import type { Kafka } from "kafkajs";
import { createKafka } from "../../src/kafka.ts";
import { silentLogger } from "../../src/log.ts";

const STATUS_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 180_000;
const LISTEN_TIMEOUT_MS = 15_000;

async function runScript(
  root: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command("bash", {
    args,
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, out: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

/**
 * Makes sure the broker of `dev/kafka.sh` runs (starting it when it does not) and returns its process id,
 * or null when the script does not tell it. The broker is shared: the benchmark never stops it.
 */
export async function ensureBroker(root: string): Promise<number | null> {
  let status = await runScript(root, ["dev/kafka.sh", "status"], STATUS_TIMEOUT_MS);
  if (status.code !== 0) {
    const start = await runScript(root, ["dev/kafka.sh", "start"], START_TIMEOUT_MS);
    if (start.code !== 0) throw new Error(`Cannot start the Kafka broker: ${start.out.trim()}`);
    status = await runScript(root, ["dev/kafka.sh", "status"], STATUS_TIMEOUT_MS);
  }
  const pid = /\(pid (\d+)\)/.exec(status.out)?.[1];
  return pid === undefined ? null : Number(pid);
}

/** The target server process. */
export interface TargetServer {
  readonly port: number;
  readonly pid: number;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts `bench/check/target_server.ts` as its own process on a free loopback port. */
export async function startTargetServer(root: string): Promise<TargetServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", `${root}bench/check/target_server.ts`, "0"],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let exited = false;
  const status = child.status.then(() => {
    exited = true;
  });
  const stop = async () => {
    if (exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      if (!exited) child.kill("SIGKILL");
    }, 5_000);
    await status;
    clearTimeout(timer);
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    const first = await deadline(reader.read(), LISTEN_TIMEOUT_MS).catch((error) => {
      throw isTimeout(error) ? new Error("Cannot start the target server: no port within 15 s") : error;
    });
    const port = Number(first.value?.trim());
    if (first.done || !Number.isInteger(port) || port <= 0) {
      throw new Error(`Cannot start the target server: it printed '${first.value ?? ""}', not a port`);
    }
    // Nothing more comes on stdout; releasing the stream lets the process exit without back-pressure.
    reader.releaseLock();
    child.stdout.cancel().catch(() => {});
    return { port, pid: child.pid, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** What the generated sites look like. */
export interface SitesSpec {
  readonly count: number;
  readonly port: number;
  readonly interval: string;
  readonly timeout: string;
}

/** The regex every other site checks; it matches the target server's body. */
export const SITE_REGEX = String.raw`"status":\s*"ok"`;

/**
 * Writes a sites file of `count` sites `site-N` on `http://127.0.0.1:PORT/N`; every other site has a regex,
 * so regex work is part of the measure.
 */
export async function writeSites(path: string, spec: SitesSpec): Promise<void> {
  const parts: string[] = [`[defaults]\ninterval = "${spec.interval}"\ntimeout = "${spec.timeout}"\n`];
  for (let n = 0; n < spec.count; n++) {
    const regex = n % 2 === 0 ? `regex = '${SITE_REGEX}'\n` : "";
    parts.push(`\n[[site]]\nname = "site-${n}"\nurl = "http://127.0.0.1:${spec.port}/${n}"\n${regex}`);
  }
  await Deno.writeTextFile(path, parts.join(""));
}

function benchKafka(brokers: string, topic: string): Kafka {
  // The project's factory, for its muting of kafkajs' negative-timeout warnings.
  return createKafka(
    { brokers: [brokers], topic, clientId: "monitor-bench", tls: null, sasl: null },
    silentLogger,
  );
}

/**
 * Counts the messages on `topic` (the sum over partitions of high minus low watermark), then deletes the
 * topic so that benchmark runs do not fill the broker's disk. Returns null when the topic cannot be read.
 */
export async function countAndDeleteTopic(brokers: string, topic: string): Promise<number | null> {
  const admin = benchKafka(brokers, topic).admin();
  await admin.connect();
  try {
    let count: number | null = null;
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      count = offsets.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
    } catch {
      // The agent never created it (it failed before publishing): nothing to count or delete.
      return null;
    }
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => {});
    return count;
  } finally {
    await admin.disconnect();
  }
}
