/**
 * The agent and the sink on a three-node KRaft cluster (replication factor 3, min.insync.replicas=2) through
 * broker failures: `kill -9` of a partition leader (restarted after 20 s), `kill -9` of the group
 * coordinator's node (restarted after 20 s), a partition leader frozen (SIGSTOP) for 25 s, then a rolling
 * restart of all three nodes, 15 s apart, while
 * the agent publishes some 400 results/s. Afterwards every result the agent counted as published is stored
 * exactly once, no partition went without progress for more than 45 s while it had lag, and the sink's
 * /metrics showed the lag. Prints, per failure, how long the agent and the sink took to recover.
 *
 * Starts its own cluster (`dev/kafka.sh cluster`) on free ports (or TEST_KAFKA_CLUSTER_PORT).
 */
import { assertEquals } from "./_assert.ts";
import { deadline, delay } from "../src/async.ts";
import { startMonitor, tempFile, waitFor } from "./_cli.ts";
import { clusterKafka, groupCoordinator, partitionLeaders, startPrivateCluster } from "./_cluster.ts";
import { createTestDatabase } from "./_pg.ts";
import { type ClusterSample, FailoverRecorder, freePort, scrape } from "./_failover.ts";

const SITES = 400;
const PARTITIONS = 6;
/** The bound: no partition may go this long without storing anything while it has lag. */
const MAX_STUCK_MS = 45_000;

Deno.test({
  name:
    "agent and sink through leader, coordinator and rolling broker failures: every published check stored once",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const cluster = await startPrivateCluster(3);
  const db = await createTestDatabase("monitor_cluster");
  const target = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("ok"));
  const sites = await tempFile(
    Array.from(
      { length: SITES },
      (_, i) =>
        `[[site]]\nname = "site-${i}"\nurl = "http://127.0.0.1:${target.addr.port}/${i}"\ninterval = "1s"\n`,
    )
      .join("\n"),
  );
  const kafka = clusterKafka(cluster.brokers);
  const topic = `failover-${Date.now().toString(36)}`;
  const group = `failover-sink-${crypto.randomUUID().slice(0, 8)}`;
  const admin = kafka.admin();
  await admin.connect();
  const agentMetrics = freePort();
  const sinkMetrics = freePort();
  let agent: ReturnType<typeof startMonitor> | null = null;
  let sink: ReturnType<typeof startMonitor> | null = null;
  const recorder = new FailoverRecorder();
  let watermarks: ReturnType<typeof kafka.admin> | null = null;
  try {
    // kafkajs's own waitForLeaders gives up when a broker has not heard of the new topic yet.
    await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 3 }],
      waitForLeaders: false,
    });
    await waitFor(
      async () => {
        const leaders = await partitionLeaders(kafka, topic).catch(() => new Map<number, number>());
        return leaders.size === PARTITIONS && [...leaders.values()].every((leader) => leader >= 0);
      },
      60_000,
      `the ${PARTITIONS} partitions of the topic to have leaders`,
    );
    sink = startMonitor([
      "sink",
      ...["--brokers", cluster.brokers, "--topic", topic, "--group", group, "--database-url", db.url],
      ...["--summary-every", "5s", "--metrics", `127.0.0.1:${sinkMetrics}`],
    ]);
    const agentStarted = Date.now();
    agent = startMonitor([
      "check",
      ...["--sites", sites, "--brokers", cluster.brokers, "--topic", topic],
      ...["--summary-every", "5s", "--metrics", `127.0.0.1:${agentMetrics}`, "--drain-timeout", "60s"],
    ]);
    // The high watermarks come from a client of their own, replaced after a read that fails: a client whose
    // read hangs on a frozen broker would otherwise keep asking it (kafkajs refreshes its metadata only after a
    // closed connection), and the test would see no lag for as long as the broker is frozen.
    const readHighWatermarks = async () => {
      try {
        if (watermarks === null) {
          watermarks = kafka.admin();
          await deadline(watermarks.connect(), 2_000);
        }
        return await deadline(watermarks.fetchTopicOffsets(topic), 2_000);
      } catch {
        watermarks?.disconnect().catch(() => {});
        watermarks = null;
        return null;
      }
    };
    const sample = async (): Promise<ClusterSample> => {
      const [agentValues, sinkValues, stored, offsets] = await Promise.all([
        scrape(agentMetrics),
        scrape(sinkMetrics),
        db.sql<{ partition: number; next_offset: string }[]>`
          select partition, next_offset from consumer_offsets where group_id = ${group} and topic = ${topic}`
          .then((rows) => new Map(rows.map((row) => [row.partition, BigInt(row.next_offset)]))),
        readHighWatermarks(),
      ]);
      return {
        published: agentValues?.get("monitor_published_total") ?? null,
        resent: agentValues?.get("monitor_resent_total") ?? null,
        outbox: agentValues?.get("monitor_outbox_depth") ?? null,
        sinkLag: sinkValues?.get("monitor_sink_consumer_lag") ?? null,
        stored,
        high: offsets === null ? null : new Map(offsets.map((o) => [o.partition, BigInt(o.high)])),
      };
    };
    const sampling = recorder.sampleEvery(1_000, sample);

    await waitFor(
      () => recorder.latest?.stored.size === PARTITIONS,
      // The first producer and the first group create the internal topics (replicated 3 times): slow on a
      // busy machine.
      150_000,
      "every partition to store checks",
    );
    await delay(5_000);

    // 1. kill -9 a partition leader (not the coordinator's node, which comes next), restart it after 20 s.
    const coordinator = await groupCoordinator(kafka, group);
    const leaders = await partitionLeaders(kafka, topic);
    const leader = [...leaders.values()].find((node) => node !== coordinator) ?? leaders.get(0)!;
    recorder.event(`kill -9 node ${leader} (leads partitions ${partitionsOf(leaders, leader)})`);
    await cluster.killNode(leader);
    await delay(20_000);
    await cluster.startNode(leader);
    await delay(5_000);

    // 2. kill -9 the group coordinator's node, restart it after 20 s.
    const current = await groupCoordinator(kafka, group);
    recorder.event(`kill -9 node ${current} (group coordinator)`);
    await cluster.killNode(current);
    await delay(20_000);
    await cluster.startNode(current);
    await delay(5_000);

    // 3. A hung broker: SIGSTOP a partition leader for 25 s (its connections stay open and nothing answers,
    // unlike a killed node's), then SIGCONT.
    const frozen = await partitionLeaders(kafka, topic).then((leaders) => leaders.get(0)!);
    recorder.event(`SIGSTOP node ${frozen} (a hung broker)`);
    await cluster.freezeNode(frozen, true);
    try {
      await delay(25_000);
    } finally {
      await cluster.freezeNode(frozen, false);
    }
    recorder.event(`SIGCONT node ${frozen}`);
    await delay(10_000);

    // 4. A rolling restart: each node stopped cleanly and started, 15 s between nodes.
    for (const node of cluster.nodes) {
      recorder.event(`rolling restart: node ${node}`);
      await cluster.stopNode(node);
      await cluster.startNode(node);
      await delay(15_000);
    }

    // 5. A stalled database: the offsets table locked against writes for 10 s, so the sink's transactions wait.
    // Its /metrics must show the lag that builds meanwhile (the faults above can pass between its watermark
    // reads, 5 s apart: the agent publishes nothing while a leader is away, and catches up in a second or two).
    recorder.event("database stalled (consumer_offsets locked 10 s)");
    await db.sql.begin(async (tx) => {
      await tx`lock table consumer_offsets in exclusive mode`;
      await delay(10_000);
    });
    await delay(5_000);

    recorder.event("agent stopped (SIGTERM)");
    const stopped = await stopWithin(agent, 90_000, "agent");
    agent = null;
    assertEquals(stopped.code, 0, tail(stopped.stderr));
    const final = stoppedLine(stopped.stderr);
    const rate = Math.round(final.published / ((Date.now() - agentStarted) / 1_000));
    await waitFor(
      async () => {
        const [{ count }] = await db.sql<[{ count: number }]>`select count(*)::int as count from checks`;
        return count >= final.published;
      },
      90_000,
      `the sink to store ${final.published} checks`,
    ).catch(() => {});
    await delay(2_000);
    await sampling.stop();
    const sinkStopped = await stopWithin(sink, 30_000, "sink");
    sink = null;
    assertEquals(sinkStopped.code, 0, tail(sinkStopped.stderr));

    const report = recorder.report();
    console.log(`${report.text}\nagent: published ${final.published} (${rate}/s), re-sent ${final.resent}`);
    const reportFile = Deno.env.get("CLUSTER_TEST_REPORT");
    if (reportFile !== undefined) {
      await Deno.writeTextFile(reportFile, JSON.stringify({ final, rate, ...report.figures }) + "\n", {
        append: true,
      });
    }

    const [rows] = await db.sql<[{ total: number; distinct: number }]>`
      select count(*)::int as total, count(distinct id)::int as distinct from checks`;
    assertEquals(final.dropped, 0, "results dropped from the outbox");
    assertEquals(final.published, final.probes, "every probe's result published");
    assertEquals({ total: rows.total, distinct: rows.distinct }, {
      total: final.published,
      distinct: final.published,
    }, `stored vs the agent's published=${final.published}\n${tail(sinkStopped.stderr)}`);
    assertEquals(
      report.figures.maxStuckMs <= MAX_STUCK_MS,
      true,
      `partition ${report.figures.maxStuckPartition} stored nothing for ${report.figures.maxStuckMs} ms ` +
        `while it had lag\n${tail(sinkStopped.stderr)}`,
    );
    assertEquals(report.figures.maxSinkLagDuringOutage > 0, true, "the sink's /metrics never showed lag");
  } finally {
    await keepLog("agent", agent ?? null);
    await keepLog("sink", sink ?? null);
    await agent?.stop("SIGKILL");
    await sink?.stop("SIGKILL");
    await admin.disconnect().catch(() => {});
    await (watermarks as ReturnType<typeof kafka.admin> | null)?.disconnect().catch(() => {});
    await target.shutdown();
    await Deno.remove(sites).catch(() => {});
    await db.drop().catch(() => {});
    await cluster.destroy();
  }
});

/** SIGTERM, and SIGKILL with a failure when the process has not exited within `ms`. */
async function stopWithin(
  process: ReturnType<typeof startMonitor>,
  ms: number,
  name: string,
): Promise<{ code: number; stderr: string }> {
  await keepLog(name, process);
  const stopping = process.stop();
  const stopped = await deadline(stopping, ms).catch(() => null);
  await keepLog(name, process);
  if (stopped !== null) return stopped;
  await process.stop("SIGKILL");
  throw new Error(`The ${name} did not exit within ${ms} ms of SIGTERM:\n${tail(process.stderr.text)}`);
}

/** With CLUSTER_TEST_LOGS=DIR, keeps each process's log there. */
async function keepLog(name: string, process: ReturnType<typeof startMonitor> | null): Promise<void> {
  const dir = Deno.env.get("CLUSTER_TEST_LOGS");
  if (dir === undefined || process === null) return;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/${name}.log`, process.stderr.text);
}

function partitionsOf(leaders: Map<number, number>, node: number): string {
  return [...leaders].filter(([, leader]) => leader === node).map(([partition]) => partition).join(",");
}

/** The agent's final "stopped" line: probes, published, resent and dropped. */
function stoppedLine(stderr: string): { probes: number; published: number; resent: number; dropped: number } {
  const line = stderr.split("\n").find((l) => / INFO +stopped/.test(l));
  if (line === undefined) throw new Error(`no 'stopped' line in:\n${tail(stderr)}`);
  const field = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1]);
  return {
    probes: field("probes"),
    published: field("published"),
    resent: field("resent"),
    dropped: field("dropped"),
  };
}

function tail(text: string, lines = 60): string {
  return text.split("\n").slice(-lines).join("\n");
}
