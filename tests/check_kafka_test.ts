/**
 * `monitor check` publishing to the real broker: message shape, security listeners, SIGTERM flushing, and
 * a broker outage survived by the outbox (on a private broker, so the shared one is never disturbed).
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { runMonitor, startMonitor, tempFile, waitFor } from "./_cli.ts";
import {
  BROKER,
  CERTS,
  createTopic,
  readTopic,
  SASL_BROKER,
  SCRAM_PASSWORD,
  SCRAM_USER,
  SSL_BROKER,
  startPrivateBroker,
} from "./_kafka.ts";
import { delay } from "../src/async.ts";

const WIRE_FIELDS = [
  "agent",
  "bytes",
  "cert_expires_at",
  "duration_ms",
  "error",
  "id",
  "interval_ms",
  "regex",
  "regex_matched",
  "region",
  "scheduled_at",
  "site",
  "started_at",
  "status",
  "ttfb_ms",
  "up",
  "url",
  "v",
];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A loopback server with a healthy page, a failing one and a slow one. */
function startTargets(): { server: Deno.HttpServer; base: string } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/ok") return new Response("all systems ok");
    if (path === "/slow") {
      await delay(600);
      return new Response("slow ok");
    }
    return new Response("broken", { status: 500 });
  });
  return { server, base: `http://127.0.0.1:${server.addr.port}` };
}

/** A sites file of `count` sites named PREFIX0.., all probing `url` every `interval`. */
function manySites(count: number, prefix: string, url: string, interval = "1s"): Promise<string> {
  return tempFile(
    Array.from(
      { length: count },
      (_, i) => `[[site]]\nname = "${prefix}${i}"\nurl = "${url}"\ninterval = "${interval}"\n`,
    )
      .join("\n"),
  );
}

/** Asserts that the messages are exactly `count` results, each with an id of its own. */
function assertEachOnce(messages: readonly { value: string | null }[], count: number): void {
  const ids = messages.map((m) => JSON.parse(m.value!).id);
  assertEquals(ids.length, count);
  assertEquals(new Set(ids).size, count);
}

function sitesFile(base: string, extra = ""): Promise<string> {
  return tempFile(`
[[site]]
name = "healthy"
url = "${base}/ok"
regex = "systems ok"

[[site]]
name = "broken"
url = "${base}/fail"
${extra}`);
}

const kafkaTest = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "check --once publishes one message per probe, keyed by site, with every wire field",
  kafkaTest,
  async () => {
    const { server, base } = startTargets();
    const sites = await sitesFile(base);
    try {
      const topic = await createTopic("check-once");
      const run = await runMonitor([
        "check",
        "--sites",
        sites,
        "--once",
        "--json",
        "--brokers",
        BROKER,
        "--topic",
        topic,
        "--agent",
        "test-agent",
        "--region",
        "eu-test",
      ]);
      assertEquals(run.code, 1, run.stderr); // one site is down
      const messages = await readTopic(topic, 2);
      assertEquals(messages.length, 2);
      const byKey = new Map(messages.map((m) => [m.key, JSON.parse(m.value!)]));
      const healthy = byKey.get("healthy");
      const broken = byKey.get("broken");
      assertEquals(Object.keys(healthy).sort(), WIRE_FIELDS);
      assertEquals(Object.keys(broken).sort(), WIRE_FIELDS);
      assertEquals(
        [healthy.v, healthy.site, healthy.url, healthy.agent, healthy.region, healthy.up, healthy.status],
        [1, "healthy", `${base}/ok`, "test-agent", "eu-test", true, 200],
      );
      assertEquals([healthy.regex, healthy.regex_matched, healthy.bytes, healthy.error], [
        "systems ok",
        true,
        14,
        null,
      ]);
      assertEquals([broken.up, broken.status, broken.error.kind], [false, 500, "http"]);
      assertMatch(healthy.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assertEquals(healthy.id === broken.id, false);
      // The NDJSON on stdout is the same results.
      const printed = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
      assertEquals(printed.map((r) => r.id).sort(), [healthy.id, broken.id].sort());
    } finally {
      await server.shutdown();
      await Deno.remove(sites);
    }
  },
);

Deno.test(
  "a site url's credentials are sent as basic auth but published as ***@, whether from the file or ${NAME}",
  kafkaTest,
  async () => {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      const ok = request.headers.get("authorization") === `Basic ${btoa("probe:s3cret-pw")}`;
      return new Response(ok ? "welcome" : "who are you?", { status: ok ? 200 : 401 });
    });
    const host = `127.0.0.1:${server.addr.port}`;
    const sites = await tempFile(
      `[[site]]\nname = "literal"\nurl = "http://probe:s3cret-pw@${host}/private"\n\n` +
        `[[site]]\nname = "from-env"\nurl = "http://\${PROBE_USER}:\${PROBE_PASSWORD}@${host}/private?q=1"\n`,
    );
    try {
      const topic = await createTopic("check-userinfo");
      const run = await runMonitor(
        ["check", "--sites", sites, "--once", "--json", "--brokers", BROKER, "--topic", topic],
        { PROBE_USER: "probe", PROBE_PASSWORD: "s3cret-pw" },
      );
      assertEquals(run.code, 0, run.stderr + run.stdout);
      const messages = await readTopic(topic, 2);
      const byKey = new Map(messages.map((m) => [m.key, JSON.parse(m.value!)]));
      assertEquals([byKey.get("literal").url, byKey.get("literal").up], [`http://***@${host}/private`, true]);
      assertEquals([byKey.get("from-env").url, byKey.get("from-env").up], [
        `http://***@${host}/private?q=1`,
        true,
      ]);
      for (const text of [run.stdout, run.stderr, ...messages.map((m) => m.value!)]) {
        assertEquals(text.includes("s3cret-pw") || text.includes("probe:"), false, text);
      }
    } finally {
      await server.shutdown();
      await Deno.remove(sites);
    }
  },
);

Deno.test("check --once exits 0 when every site is up and prints a table on request", kafkaTest, async () => {
  const { server, base } = startTargets();
  const sites = await tempFile(`[[site]]\nname = "healthy"\nurl = "${base}/ok"\n`);
  try {
    const run = await runMonitor(["check", "--sites", sites, "--once"]);
    assertEquals(run.code, 0, run.stderr);
    // Piped stdout gets NDJSON: one line, the healthy site.
    const [line, ...rest] = run.stdout.trim().split("\n");
    assertEquals(rest, []);
    assertEquals(JSON.parse(line!).up, true);
  } finally {
    await server.shutdown();
    await Deno.remove(sites);
  }
});

Deno.test("check publishes over the SSL listener with a client certificate", kafkaTest, async () => {
  const { server, base } = startTargets();
  const sites = await sitesFile(base);
  try {
    const topic = await createTopic("check-ssl");
    const run = await runMonitor([
      "check",
      "--sites",
      sites,
      "--once",
      "--brokers",
      SSL_BROKER,
      "--topic",
      topic,
    ], {
      MONITOR_KAFKA_CA: `${CERTS}/ca.pem`,
      MONITOR_KAFKA_CERT: `${CERTS}/client.pem`,
      MONITOR_KAFKA_KEY: `${CERTS}/client.key`,
    });
    assertEquals(run.code, 1, run.stderr);
    const messages = await readTopic(topic, 2);
    assertEquals(messages.map((m) => m.key).sort(), ["broken", "healthy"]);
  } finally {
    await server.shutdown();
    await Deno.remove(sites);
  }
});

Deno.test(
  "check publishes over SASL_SSL with SCRAM-SHA-512, and never logs the password",
  kafkaTest,
  async () => {
    const { server, base } = startTargets();
    const sites = await sitesFile(base);
    try {
      const topic = await createTopic("check-sasl");
      const run = await runMonitor([
        "check",
        "--sites",
        sites,
        "--once",
        "--brokers",
        SASL_BROKER,
        "--topic",
        topic,
        "--kafka-ca",
        `${CERTS}/ca.pem`,
        "--sasl-mechanism",
        "scram-sha-512",
        "--sasl-username",
        SCRAM_USER,
      ], { MONITOR_SASL_PASSWORD: SCRAM_PASSWORD });
      assertEquals(run.code, 1, run.stderr);
      assertEquals(run.stderr.includes(SCRAM_PASSWORD), false);
      const messages = await readTopic(topic, 2);
      assertEquals(messages.map((m) => m.key).sort(), ["broken", "healthy"]);
    } finally {
      await server.shutdown();
      await Deno.remove(sites);
    }
  },
);

Deno.test("check with a wrong CA fails with a clear certificate error and exit 1", kafkaTest, async () => {
  const { server, base } = startTargets();
  const sites = await sitesFile(base);
  try {
    const started = Date.now();
    const run = await runMonitor([
      "check",
      "--sites",
      sites,
      "--once",
      "--brokers",
      SSL_BROKER,
      "--kafka-ca",
      `${CERTS}/wrong-ca.pem`,
      "--kafka-cert",
      `${CERTS}/client.pem`,
      "--kafka-key",
      `${CERTS}/client.key`,
    ]);
    // The start-up check finds it before any probe, in one attempt: no retries, no drain timeout.
    assertEquals(run.code, 1);
    assertEquals(
      run.stderr,
      `monitor check: Cannot connect to Kafka at ${SSL_BROKER}: the broker's certificate is not trusted ` +
        "(self-signed certificate in certificate chain): check '--kafka-ca' (it must be the CA that signed the " +
        "broker's certificate)\n",
    );
    assertEquals(run.stdout, "");
    assertEquals(Date.now() - started < 15_000, true);
  } finally {
    await server.shutdown();
    await Deno.remove(sites);
  }
});

/** Parses the agent's final "stopped" line: how many probes it made and published. */
function stoppedTotals(stderr: string): { probes: number; published: number; dropped: number } {
  const line = stderr.split("\n").find((l) => / (INFO|ERROR) +stopped/.test(l));
  if (line === undefined) throw new Error(`no 'stopped' line in:\n${stderr}`);
  const field = (name: string) => Number(new RegExp(`${name}=(\\d+)`).exec(line)?.[1]);
  return { probes: field("probes"), published: field("published"), dropped: field("dropped") };
}

Deno.test(
  "SIGTERM with probes in flight: their results are on the topic when the agent exits",
  kafkaTest,
  async () => {
    const { server, base } = startTargets();
    // Every 2 s, so the probe's timeout (its interval) is 2 s: the page answers in 0.6 s, and a loaded
    // machine (CI runs test files in parallel) stretched that past the 1 s of a 1 s interval.
    const sites = await manySites(20, "slow-", `${base}/slow`, "2s");
    try {
      const topic = await createTopic("check-sigterm", 3);
      const agent = startMonitor(["check", "--sites", sites, "--brokers", BROKER, "--topic", topic]);
      await waitFor(() => agent.stderr.text.includes("agent started"), 20_000, "the agent to start");
      // Every site's first probe starts within its 2 s interval; 1.5 s more for a loaded machine.
      await delay(3_500);
      const stopped = await agent.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
      const totals = stoppedTotals(agent.stderr.text);
      assertEquals(totals.probes >= 20, true, agent.stderr.text);
      assertEquals(totals.published, totals.probes);
      const messages = await readTopic(topic, totals.probes + 1, 8_000);
      assertEachOnce(messages, totals.probes);
      // Every slow probe ran to its end: none was cut short by the shutdown.
      assertEquals(messages.every((m) => JSON.parse(m.value!).up === true), true);
    } finally {
      await server.shutdown();
      await Deno.remove(sites);
    }
  },
);

Deno.test(
  "a broker outage: results wait in the outbox and all arrive, once each, when it returns",
  kafkaTest,
  async () => {
    const { server, base } = startTargets();
    const sites = await manySites(5, "s", `${base}/ok`);
    const metricsPort = freePort();
    const broker = await startPrivateBroker();
    try {
      const topic = "outage-test";
      const agent = startMonitor([
        "check",
        "--sites",
        sites,
        "--brokers",
        broker.brokers,
        "--topic",
        topic,
        "--create-topic",
        "--partitions",
        "2",
        "--metrics",
        `127.0.0.1:${metricsPort}`,
      ]);
      await waitFor(() => agent.stderr.text.includes("created topic"), 30_000, "the topic");
      await delay(2_000);
      await broker.stop();
      await delay(6_000);
      await broker.start();
      // kafkajs may ride out the outage inside one send, or the send fails and the publisher retries it:
      // either way the backlog drains once the broker is back.
      await waitFor(
        async () => {
          const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          return /^monitor_outbox_depth 0$/m.test(metrics) && !/^monitor_published_total 0$/m.test(metrics);
        },
        60_000,
        "the outbox to drain",
      ).catch((error) => {
        throw new Error(`${error.message}; the agent said:\n${agent.stderr.text.slice(-6000)}`);
      });
      await delay(2_000);
      const stopped = await agent.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
      assertMatch(agent.stderr.text, /ECONNREFUSED/); // the outage was real
      // kafkajs's lines are folded: no stack traces, and no condition repeated within a second.
      assertEquals(/^\s+at |stack=/m.test(agent.stderr.text), false, agent.stderr.text);
      const kafkaLines = agent.stderr.text.split("\n").filter((line) => / WARN {2}kafka: /.test(line));
      const seen = new Map<string, number>();
      for (const line of kafkaLines) {
        const time = Date.parse(line.slice(0, 24));
        const condition = line.slice(25).replace(/ repeated=\d+/, "");
        const last = seen.get(condition);
        assertEquals(last === undefined || time - last >= 1_000, true, `repeated within 1 s: ${line}`);
        seen.set(condition, time);
      }
      const totals = stoppedTotals(agent.stderr.text);
      assertEquals(totals.dropped, 0);
      assertEquals(totals.published, totals.probes);
      assertEquals(totals.probes >= 40, true, `only ${totals.probes} probes`);
      const messages = await readTopic(topic, totals.probes + 1, 10_000, broker.brokers);
      assertEachOnce(messages, totals.probes);
    } finally {
      await broker.destroy();
      await server.shutdown();
      await Deno.remove(sites);
    }
  },
);

Deno.test(
  "with the broker unreachable, a full outbox drops the oldest results, counts and exposes them",
  kafkaTest,
  async () => {
    const { server, base } = startTargets();
    const sites = await manySites(4, "s", `${base}/ok`);
    const metricsPort = freePort();
    try {
      const agent = startMonitor([
        "check",
        "--sites",
        sites,
        "--brokers",
        "127.0.0.1:19999", // nothing listens here
        "--outbox",
        "3",
        "--metrics",
        `127.0.0.1:${metricsPort}`,
        "--drain-timeout",
        "1s",
      ]);
      await waitFor(
        () => agent.stderr.text.includes("outbox full: dropping the oldest results"),
        20_000,
        "drops",
      );
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)?.[1]);
      // The outbox holds 3; a batch of up to 3 may be in a send that cannot succeed.
      const depth = value("monitor_outbox_depth");
      assertEquals(depth >= 3 && depth <= 6, true, metrics);
      assertEquals(value("monitor_outbox_dropped_total") > 0, true, metrics);
      assertEquals(value("monitor_published_total"), 0);
      assertEquals(value("monitor_probes_up_total") >= 4, true, metrics);
      const stopped = await agent.stop();
      // Results it could not deliver: exit 1 (README, exit codes).
      assertEquals(stopped.code, 1, stopped.stderr);
      // Every result is accounted for: published (none), dropped, or reported undelivered.
      const line =
        /stopped with results unpublished probes=(\d+) published=0 resent=0 dropped=(\d+) undelivered=(\d+)/
          .exec(agent.stderr.text);
      assertEquals(line !== null, true, agent.stderr.text);
      const [probes, dropped, undelivered] = line!.slice(1).map(Number) as [number, number, number];
      assertEquals(dropped > 0 && undelivered > 0, true, line![0]);
      assertEquals(dropped + undelivered, probes, line![0]);
    } finally {
      await server.shutdown();
      await Deno.remove(sites);
    }
  },
);
