/**
 * Permanent and transient Kafka errors at start, against the real broker: each permanent error ends `check`
 * and `sink` within 15 s with one line naming the cause and the flag to fix (exit 1, or 2 for a file found
 * wrong before connecting); an unreachable broker and a missing topic (for the sink) are waited for.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { runMonitor, startMonitor, tempFile, waitFor } from "./_cli.ts";
import { makeCheck, produceChecks } from "./_checks.ts";
import {
  BROKER,
  CERTS,
  createTopic,
  plainKafka,
  SASL_BROKER,
  SCRAM_PASSWORD,
  SCRAM_USER,
  SSL_BROKER,
  startPrivateBroker,
} from "./_kafka.ts";
import { createTestDatabase } from "./_pg.ts";

const options = { sanitizeOps: false, sanitizeResources: false };
const NOT_PEM = await tempFile("this is not PEM\n", ".pem");
const SITES = await tempFile(`[[site]]\nname = "a"\nurl = "http://127.0.0.1:2/"\ntimeout = "1s"\n`);
const NO_DATABASE = "postgres://postgres@127.0.0.1:9/none";
const TOPIC = await createTopic("errors");

interface Case {
  readonly behaviour: string;
  /** The Kafka flags. */
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
  readonly code: number;
  /** The exact first line on stderr, after `monitor <command>: `. */
  readonly line: string;
}

const TLS_CLIENT = ["--kafka-cert", `${CERTS}/client.pem`, "--kafka-key", `${CERTS}/client.key`];

const CASES: readonly Case[] = [
  {
    behaviour: "a wrong CA is a broker certificate that is not trusted",
    args: ["--brokers", SSL_BROKER, "--kafka-ca", `${CERTS}/wrong-ca.pem`, ...TLS_CLIENT],
    code: 1,
    line: `Cannot connect to Kafka at ${SSL_BROKER}: the broker's certificate is not trusted (self-signed ` +
      "certificate in certificate chain): check '--kafka-ca' (it must be the CA that signed the broker's " +
      "certificate)",
  },
  {
    behaviour: "a client certificate that is not PEM is a configuration error",
    args: [
      "--brokers",
      SSL_BROKER,
      "--kafka-ca",
      `${CERTS}/ca.pem`,
      "--kafka-cert",
      NOT_PEM,
      "--kafka-key",
      `${CERTS}/client.key`,
    ],
    code: 2,
    line: `Cannot use '--kafka-cert' file '${NOT_PEM}': it holds no PEM block, not a PEM certificate`,
  },
  {
    behaviour: "an unreadable CA file is a configuration error",
    args: ["--brokers", SSL_BROKER, "--kafka-ca", "/nonexistent/ca.pem"],
    code: 2,
    line: "Cannot read '--kafka-ca' file '/nonexistent/ca.pem': No such file or directory (os error 2)",
  },
  {
    behaviour: "a certificate and key given the other way round are named as swapped",
    args: [
      ...["--brokers", SSL_BROKER, "--kafka-ca", `${CERTS}/ca.pem`],
      ...["--kafka-cert", `${CERTS}/client.key`, "--kafka-key", `${CERTS}/client.pem`],
    ],
    code: 2,
    line: `Cannot use '--kafka-cert' file '${CERTS}/client.key': it holds a private key, not a PEM ` +
      "certificate: are '--kafka-cert' and '--kafka-key' swapped?",
  },
  {
    behaviour: "a key that is not the certificate's is named before connecting",
    args: [
      ...["--brokers", SSL_BROKER, "--kafka-ca", `${CERTS}/ca.pem`],
      ...["--kafka-cert", `${CERTS}/client.pem`, "--kafka-key", `${CERTS}/broker.key`],
    ],
    code: 2,
    line: `Cannot use '--kafka-key' file '${CERTS}/broker.key': it is not the key of the certificate in ` +
      `'--kafka-cert' file '${CERTS}/client.pem'`,
  },
  {
    behaviour: "no client certificate where the broker requires one is a refused handshake",
    args: ["--brokers", SSL_BROKER, "--kafka-ca", `${CERTS}/ca.pem`],
    code: 1,
    line: `Cannot connect to Kafka at ${SSL_BROKER}: the broker refused the TLS handshake (received fatal ` +
      "alert: BadCertificate): the broker may require a client certificate: set '--kafka-cert' and '--kafka-key'",
  },
  {
    behaviour: "a client certificate from a CA the broker does not trust is a refused handshake",
    args: [
      ...["--brokers", SSL_BROKER, "--kafka-ca", `${CERTS}/ca.pem`],
      ...["--kafka-cert", `${CERTS}/wrong-ca.pem`, "--kafka-key", `${CERTS}/wrong-ca.key`],
    ],
    code: 1,
    line: `Cannot connect to Kafka at ${SSL_BROKER}: the broker refused the TLS handshake (received fatal ` +
      "alert: CertificateUnknown): check '--kafka-cert' and '--kafka-key' (the broker's CA must have signed " +
      "the certificate)",
  },
  {
    behaviour: "a wrong SASL password is a failed authentication",
    args: [
      ...["--brokers", SASL_BROKER, "--kafka-ca", `${CERTS}/ca.pem`],
      ...["--sasl-mechanism", "scram-sha-512", "--sasl-username", SCRAM_USER],
    ],
    env: { MONITOR_SASL_PASSWORD: "not-the-password" },
    code: 1,
    line: `Cannot connect to Kafka at ${SASL_BROKER}: SASL authentication as '${SCRAM_USER}' failed ` +
      "(Authentication failed during authentication due to invalid credentials with SASL mechanism " +
      "SCRAM-SHA-512): check '--sasl-username', '--sasl-mechanism' and MONITOR_SASL_PASSWORD",
  },
];

/** Runs `command` with the case's flags and checks the exit code, the first line and the time taken. */
async function expectFailure(command: "check" | "sink", testCase: Case, extra: readonly string[]) {
  const started = Date.now();
  const run = await runMonitor([command, ...extra, "--topic", TOPIC, ...testCase.args], {
    DATABASE_URL: NO_DATABASE,
    ...testCase.env,
  });
  const elapsed = Date.now() - started;
  assertEquals(run.code, testCase.code, run.stderr);
  const lines = run.stderr.trimEnd().split("\n");
  assertEquals(lines[0], `monitor ${command}: ${testCase.line}`);
  // One line: no kafkajs lines, no stack traces, no retries.
  assertEquals(lines, [lines[0]]);
  assertEquals(elapsed < 15_000, true, `took ${elapsed} ms`);
  assertEquals(run.stderr.includes(SCRAM_PASSWORD) || run.stderr.includes("not-the-password"), false);
}

for (const testCase of CASES) {
  Deno.test(
    `check: ${testCase.behaviour} (exit ${testCase.code}, one line)`,
    options,
    () => expectFailure("check", testCase, ["--sites", SITES, "--once"]),
  );
  Deno.test(
    `sink: ${testCase.behaviour} (exit ${testCase.code}, one line)`,
    options,
    () => expectFailure("sink", testCase, []),
  );
}

Deno.test(
  "check: a missing topic is named, with the hint --create-topic (exit 1, one line)",
  options,
  async () => {
    const run = await runMonitor([
      "check",
      "--sites",
      SITES,
      "--once",
      "--brokers",
      BROKER,
      "--topic",
      "no-such-topic",
    ]);
    assertEquals(run.code, 1, run.stderr);
    assertEquals(
      run.stderr,
      `monitor check: Cannot publish to Kafka at ${BROKER}: topic 'no-such-topic' does not exist: create it, or ` +
        "pass '--create-topic'\n",
    );
  },
);

Deno.test("sink: waits for a missing topic, says so, and consumes it once it exists", options, async () => {
  const db = await createTestDatabase("monitor_errors");
  const topic = `late-${crypto.randomUUID().slice(0, 8)}`;
  const sink = startMonitor(["sink", "--brokers", BROKER, "--topic", topic, "--group", "late"], {
    DATABASE_URL: db.url,
  });
  try {
    await waitFor(() => sink.stderr.text.includes("waiting for the topic to exist"), 20_000, "the wait");
    assertMatch(
      sink.stderr.text,
      new RegExp(`WARN  waiting for the topic to exist topic=${topic} retry_in_ms=\\d+`),
    );
    const admin = plainKafka().admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const check = makeCheck("late-site", new Date());
    await produceChecks(topic, [check]);
    await waitFor(
      async () => {
        const rows = await db.sql`select id::text from checks`.catch(() => []);
        return rows.length === 1 && rows[0]?.id === check.id;
      },
      60_000,
      "the check stored",
    ).catch((error) => {
      throw new Error(`${error.message}; the sink said:\n${sink.stderr.text}`);
    });
    const stopped = await sink.stop();
    assertEquals(stopped.code, 0, stopped.stderr);
  } finally {
    await sink.stop();
    await db.drop();
  }
});

Deno.test(
  "sink: an unreachable broker is retried with backoff, said once per attempt; SIGTERM ends it",
  options,
  async () => {
    const sink = startMonitor(["sink", "--brokers", "127.0.0.1:19999", "--drain-timeout", "2s"], {
      DATABASE_URL: NO_DATABASE,
    });
    await waitFor(
      () => (sink.stderr.text.match(/cannot reach Kafka; will retry/g) ?? []).length >= 3,
      20_000,
      "retries",
    );
    const started = Date.now();
    const stopped = await sink.stop();
    assertEquals(stopped.code, 0, stopped.stderr);
    assertEquals(Date.now() - started < 2_000, true);
    const lines = stopped.stderr.trimEnd().split("\n");
    for (const line of lines) {
      assertMatch(
        line,
        /^\S+ WARN {2}cannot reach Kafka; will retry error="Cannot connect to Kafka at 127\.0\.0\.1:19999: connect ECONNREFUSED 127\.0\.0\.1:19999" retry_in_ms=\d+$/,
      );
    }
    // Backoff: the waits grow.
    const waits = lines.map((line) => Number(/retry_in_ms=(\d+)/.exec(line)![1]));
    assertEquals(waits[2]! > waits[0]!, true, waits.join(","));
  },
);

Deno.test(
  "check and sink: a user without ACLs is refused authorization, named with its topic (exit 1, one line)",
  options,
  async () => {
    // An authorizer where only the broker itself (PLAINTEXT, the controller) may do anything.
    const broker = await startPrivateBroker({
      extraConfig: [
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:ANONYMOUS",
      ].join("\n"),
    });
    try {
      const topic = await createTopic("acl", 1, broker.brokers);
      const sasl = `127.0.0.1:${Number(broker.brokers.split(":")[1]) + 2}`;
      const flags = [
        ...["--brokers", sasl, "--topic", topic, "--kafka-ca", `${broker.certs}/ca.pem`],
        ...["--sasl-mechanism", "scram-sha-512", "--sasl-username", SCRAM_USER],
      ];
      const env = { MONITOR_SASL_PASSWORD: SCRAM_PASSWORD, DATABASE_URL: NO_DATABASE };
      const check = await runMonitor(["check", "--sites", SITES, "--once", ...flags], env);
      assertEquals(check.code, 1, check.stderr);
      assertEquals(
        check.stderr,
        `monitor check: Cannot connect to Kafka at ${sasl}: user '${SCRAM_USER}' is not authorized to use topic ` +
          `'${topic}' (TOPIC_AUTHORIZATION_FAILED): grant it the ACLs, or check '--topic' and '--sasl-username'\n`,
      );
      const sink = await runMonitor(["sink", ...flags], env);
      assertEquals(sink.code, 1, sink.stderr);
      assertEquals(
        sink.stderr.split("\n")[0],
        check.stderr.split("\n")[0]!.replace("monitor check", "monitor sink"),
      );
    } finally {
      await broker.destroy();
    }
  },
);

/** A TCP forwarder from a free loopback port to `target`, to open once a client has met a closed port. */
function forwarder(target: string): { address: string; open(): void; close(): void } {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close(); // closed until open(): connections are refused
  let listener: Deno.Listener | null = null;
  const [host, targetPort] = target.split(":");
  return {
    address: `127.0.0.1:${port}`,
    open() {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      (async () => {
        for await (const client of listener!) {
          const upstream = await Deno.connect({ hostname: host!, port: Number(targetPort) });
          client.readable.pipeTo(upstream.writable).catch(() => {});
          upstream.readable.pipeTo(client.writable).catch(() => {});
        }
      })().catch(() => {});
    },
    close: () => listener?.close(),
  };
}

Deno.test(
  "check: a permanent error found once an unreachable broker comes up ends the agent with exit 1 and the cause",
  options,
  async () => {
    const broker = forwarder(SSL_BROKER);
    const agent = startMonitor([
      ...["check", "--sites", SITES, "--brokers", broker.address, "--topic", "t"],
      ...["--kafka-ca", `${CERTS}/wrong-ca.pem`, ...TLS_CLIENT],
    ]);
    try {
      await waitFor(() => agent.stderr.text.includes("cannot reach Kafka; will retry"), 20_000, "a retry")
        .catch((error) => {
          throw new Error(`${error.message}; the agent said:\n${agent.stderr.text}`);
        });
      await waitFor(() => agent.stderr.text.includes("agent started"), 20_000, "probing meanwhile");
      broker.open();
      const status = await Promise.race([
        agent.child.status,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000)),
      ]);
      assertEquals(status?.code, 1, agent.stderr.text);
      const stopped = await agent.stop();
      assertEquals(
        stopped.stderr.trimEnd().split("\n").at(-1),
        `monitor check: Cannot connect to Kafka at ${broker.address}: the broker's certificate is not trusted ` +
          "(self-signed certificate in certificate chain): check '--kafka-ca' (it must be the CA that signed the " +
          "broker's certificate)",
      );
    } finally {
      await agent.stop();
      broker.close();
    }
  },
);

Deno.test("cleanup", async () => {
  await Deno.remove(NOT_PEM);
  await Deno.remove(SITES);
});
