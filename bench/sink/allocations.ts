/**
 * Where the sink's memory comes from while it drains a backlog (issue 11): starts `monitor sink` on a topic
 * pre-filled by bench/sink/memory.ts (fresh group and database), lets it drain `--after` checks, then samples
 * its allocations for `--seconds` through the V8 inspector (`HeapProfiler.startSampling`) and prints the
 * functions that allocated most, in MiB and in bytes per stored check. With `--live`, only what is still
 * reachable (or not yet collected) when the sampling stops is counted: what the sink holds, not what it churns.
 * `--entry /tmp/old/main.ts` profiles another checkout's sink (e.g. the code before a change).
 *
 * ```
 * TEST_KAFKA_BROKERS=127.0.0.1:9092 deno run -A bench/sink/allocations.ts --topic bench-sink-memory-... [--live]
 * ```
 *
 * The figures are samples (one per 16 KiB allocated, on average): compare runs of minutes apart, not bytes.
 *
 * @module
 */
import { BROKER, createTestDatabase } from "../../dev/services.ts";
import { deadline, delay } from "../../src/async.ts";
import { takeOption } from "../args.ts";
import { committedOffsets } from "./phases.ts";
import { type SinkProcess, startSink } from "./process.ts";

const args = [...Deno.args];
const topic = takeOption(args, "--topic");
const after = Number(takeOption(args, "--after") ?? 200_000);
const seconds = Number(takeOption(args, "--seconds") ?? 5);
const port = Number(takeOption(args, "--port") ?? 9239);
const entry = takeOption(args, "--entry");
const live = args.includes("--live");
if (topic === undefined) {
  throw new TypeError("Cannot profile: '--topic' (a topic filled by memory.ts) is required");
}
const topicName: string = topic;

/** A node of V8's sampling heap profile. */
interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly ProfileNode[];
}

/** How long one inspector request may take (a heap profile of a busy sink takes a few seconds). */
const CALL_TIMEOUT_MS = 60_000;

/**
 * A minimal Chrome DevTools Protocol client: answers matched by id; a request fails after
 * {@linkcode CALL_TIMEOUT_MS} or when the socket closes (the sink exited).
 */
async function inspector(
  url: string,
): Promise<{ call: (method: string, params?: object) => Promise<unknown> }> {
  const socket = new WebSocket(url);
  await deadline(
    new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`Cannot profile: cannot reach the inspector at ${url}`));
    }),
    CALL_TIMEOUT_MS,
  );
  const waiting = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    waiting.get(message.id)?.resolve(message.result);
    waiting.delete(message.id);
  };
  socket.onclose = () => {
    for (const { reject } of waiting.values()) reject(new Error("Cannot profile: the inspector went away"));
    waiting.clear();
  };
  let id = 0;
  return {
    call: (method, params = {}) =>
      deadline(
        new Promise((resolve, reject) => {
          waiting.set(++id, { resolve, reject });
          socket.send(JSON.stringify({ id, method, params }));
        }),
        CALL_TIMEOUT_MS,
      ),
  };
}

/** Bytes sampled per function (name, file, line), largest first. */
function byFunction(head: ProfileNode): [string, number][] {
  const sizes = new Map<string, number>();
  const stack = [head];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`;
    sizes.set(where, (sizes.get(where) ?? 0) + node.selfSize);
    stack.push(...node.children);
  }
  return [...sizes].sort((a, b) => b[1] - a[1]);
}

const db = await createTestDatabase("monitor_bench_alloc");
try {
  const group = `bench-alloc-${crypto.randomUUID().slice(0, 8)}`;
  const sink = startSink({
    brokers: BROKER,
    topic,
    group,
    databaseUrl: db.url,
    denoFlags: [`--inspect=127.0.0.1:${port}`],
    ...(entry === undefined ? {} : { entry }),
  });
  try {
    await profile(sink, group);
  } finally {
    await sink.stop();
  }
} finally {
  await db.drop();
}
// The inspector's socket keeps the process alive.
Deno.exit(0);

/** Waits for the backlog to be under way, then samples and prints the sink's allocations. */
async function profile(sink: SinkProcess, group: string): Promise<void> {
  let stored = 0;
  for (let polls = 0; polls < 1_200 && stored < after; polls++) {
    if (sink.exited) throw new Error(`Cannot profile: the sink exited: ${sink.otherOutput.join("\n")}`);
    await delay(100);
    stored = await committedOffsets(db.sql, group, topicName);
  }
  if (stored < after) {
    throw new Error(`Cannot profile: only ${stored} of ${after} checks stored in 2 minutes`);
  }
  const [target] = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const client = await inspector(target.webSocketDebuggerUrl);
  await client.call("HeapProfiler.enable");
  const from = await committedOffsets(db.sql, group, topicName);
  await client.call("HeapProfiler.startSampling", {
    samplingInterval: 16_384,
    includeObjectsCollectedByMajorGC: !live,
    includeObjectsCollectedByMinorGC: !live,
  });
  await delay(seconds * 1_000);
  const { profile } = await client.call("HeapProfiler.stopSampling") as { profile: { head: ProfileNode } };
  const checks = Math.max(await committedOffsets(db.sql, group, topicName) - from, 1);
  const functions = byFunction(profile.head);
  const total = functions.reduce((sum, [, bytes]) => sum + bytes, 0);
  const mib = (bytes: number) => (bytes / 1_048_576).toFixed(1).padStart(7);
  console.log(
    `${live ? "held" : "allocated"} in ${seconds} s: ${
      mib(total).trim()
    } MiB over ${checks} checks stored, ` +
      `${Math.round(total / checks)} bytes per check`,
  );
  for (const [where, bytes] of functions.slice(0, 30)) {
    console.log(`${mib(bytes)} MiB ${String(Math.round(bytes / checks)).padStart(6)} B/check  ${where}`);
  }
}
