import { assertEquals, assertMatch } from "./_assert.ts";
import { runMonitor, startMonitor, tempFile } from "./_cli.ts";
import { createTestDatabase } from "./_pg.ts";
import { COMMANDS } from "../main.ts";
import { formatHelp } from "../src/help.ts";
import { VERSION } from "../src/version.ts";
import { deadline, delay } from "../src/async.ts";

Deno.test("monitor --help lists the commands and exits 0", async () => {
  const { code, stdout, stderr } = await runMonitor(["--help"]);
  assertEquals(code, 0);
  assertMatch(stdout, /^monitor \d+\.\d+\.\d+: website availability monitoring/);
  for (const command of ["check", "sink", "migrate"]) assertMatch(stdout, new RegExp(`\\n  ${command} `));
  assertEquals(stderr, "");
});

Deno.test("monitor --version prints the version", async () => {
  const { code, stdout } = await runMonitor(["--version"]);
  assertEquals(code, 0);
  assertMatch(stdout, /^monitor \d+\.\d+\.\d+\n$/);
});

Deno.test("monitor with no command prints usage and exits 2", async () => {
  const { code, stdout } = await runMonitor([]);
  assertEquals(code, 2);
  assertMatch(stdout, /USAGE:/);
});

Deno.test("monitor with an unknown command exits 2 and names it", async () => {
  const { code, stderr } = await runMonitor(["chekc"]);
  assertEquals(code, 2);
  assertEquals(
    stderr,
    "monitor: Cannot run command 'chekc': it does not exist (check, sink, migrate, retire, serve or status)\nRun 'monitor --help' for usage.\n",
  );
});

for (const command of ["check", "sink", "migrate", "retire"]) {
  Deno.test(`monitor ${command} --help, -h and monitor help ${command} print its help and exit 0`, async () => {
    const help = formatHelp((await COMMANDS[command]!.load()).help);
    assertMatch(help, new RegExp(`^monitor ${command}: .*\n\nUSAGE:\n  monitor ${command} \\[OPTIONS\\]\n`));
    for (const args of [[command, "--help"], [command, "-h"], ["help", command]]) {
      const { code, stdout, stderr } = await runMonitor(args);
      assertEquals([code, stdout, stderr], [0, help, ""], args.join(" "));
    }
  });

  Deno.test(`monitor ${command} --version prints the version without reading a file or connecting`, async () => {
    // Arguments that would fail (a missing sites file, no database URL, no broker) if anything ran.
    const { code, stdout, stderr } = await runMonitor([command, "--version", "--log-format", "json"], {
      MONITOR_SITES: "/nonexistent/sites.toml",
    });
    assertEquals([code, stdout, stderr], [0, `monitor ${VERSION}\n`, ""]);
  });
}

Deno.test("monitor help with an unknown command exits 2 and names it", async () => {
  const { code, stdout, stderr } = await runMonitor(["help", "chekc"]);
  assertEquals([code, stdout], [2, ""]);
  assertEquals(
    stderr,
    "monitor: Cannot run command 'chekc': it does not exist (check, sink, migrate, retire, serve or status)\nRun 'monitor --help' for usage.\n",
  );
});

Deno.test("monitor help alone prints the usage and exits 0", async () => {
  const { code, stdout } = await runMonitor(["help"]);
  assertEquals(code, 0);
  assertEquals(stdout, (await runMonitor(["--help"])).stdout);
});

const BAD_DATABASE_URLS: readonly [string, string, string][] = [
  [
    "a wrong scheme",
    "mysql://db/monitor",
    "the URL must start with postgres:// or postgresql://: got 'mysql://'",
  ],
  ["not a URL", "not a url", "the URL is not valid: not a url"],
  [
    "a bad port, password redacted",
    "postgres://u:s3cret@db:port/x",
    "the URL is not valid: postgres://***@db:port/x",
  ],
  [
    "an unknown sslmode",
    "postgres://db/x?sslmode=strict",
    "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full: got 'strict'",
  ],
];

for (const [what, url, detail] of BAD_DATABASE_URLS) {
  for (const command of ["sink", "migrate"]) {
    Deno.test(`monitor ${command} with ${what} in --database-url exits 2 naming the flag`, async () => {
      const args = command === "sink"
        ? ["sink", "--brokers", "127.0.0.1:9", "--database-url", url]
        : ["migrate", "--database-url", url];
      const { code, stdout, stderr } = await runMonitor(args);
      assertEquals([code, stdout], [2, ""]);
      assertEquals(
        stderr,
        `monitor ${command}: Cannot use flag '--database-url': ${detail}\nRun 'monitor ${command} --help' for usage.\n`,
      );
    });
  }
}

Deno.test("check --metrics on a port in use exits 2 naming the flag and the address, before any probe", async () => {
  let requests = 0;
  const site = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    requests++;
    return new Response("ok");
  });
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const path = await tempFile(
    `[[site]]\nname = "a"\nurl = "http://127.0.0.1:${site.addr.port}/"\ninterval = "1s"\n`,
  );
  try {
    const address = `127.0.0.1:${taken.addr.port}`;
    const { code, stdout, stderr } = await runMonitor(["check", "--sites", path, "--metrics", address]);
    assertEquals([code, stdout], [2, ""]);
    assertEquals(
      stderr,
      `monitor check: Cannot use flag '--metrics': cannot listen on ${address}: it is in use\n` +
        "Run 'monitor check --help' for usage.\n",
    );
    assertEquals(requests, 0);
  } finally {
    taken.close();
    await site.shutdown();
    await Deno.remove(path);
  }
});

Deno.test("MONITOR_LOG_LEVEL drops the lines below it, and a bad level is a usage error", async () => {
  const db = await createTestDatabase("monitor_main");
  try {
    const info = await runMonitor(["migrate", "--database-url", db.url]);
    assertEquals(info.code, 0, info.stderr);
    assertMatch(info.stderr, / INFO {2}connecting to the database /);
    const quiet = await runMonitor(["migrate", "--database-url", db.url], { MONITOR_LOG_LEVEL: "warn" });
    assertEquals([quiet.code, quiet.stderr], [0, ""]);
    const bad = await runMonitor(["migrate", "--database-url", db.url, "--log-level", "loud"]);
    assertEquals([bad.code, bad.stdout], [2, ""]);
    assertEquals(
      bad.stderr,
      "monitor migrate: Cannot use flag '--log-level': expected 'debug', 'info', 'warn' or 'error': got 'loud'\n" +
        "Run 'monitor migrate --help' for usage.\n",
    );
  } finally {
    await db.drop();
  }
});

Deno.test("an unknown flag exits 2 with the flag named", async () => {
  const { code, stderr } = await runMonitor(["check", "--sitez", "x.toml"]);
  assertEquals(code, 2);
  assertEquals(
    stderr,
    "monitor check: Cannot parse arguments: unknown flag '--sitez'\nRun 'monitor check --help' for usage.\n",
  );
});

Deno.test("a bad number exits 2 with the flag and the value", async () => {
  const { code, stderr } = await runMonitor(["check", "--dry-run", "--concurrency", "lots"]);
  assertEquals(code, 2);
  assertMatch(stderr, /Cannot use flag '--concurrency': expected a whole number of at least 1: got 'lots'/);
});

Deno.test("a bad sites file stops check before anything runs: exit 2, file, line and key", async () => {
  const path = await tempFile(`[[site]]\nname = "a"\nurl = "http://127.0.0.1:2/"\ninterval = "fast"\n`);
  try {
    const { code, stdout, stderr } = await runMonitor(["check", "--sites", path, "--once"]);
    assertEquals(code, 2);
    assertEquals(stdout, "");
    assertEquals(
      stderr,
      `monitor check: ${path}:4: Cannot load site 'a': key 'interval' must be a duration such as "30s", "1m" or "500ms": got "fast"\n`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a missing sites file exits 2 and names the path", async () => {
  const { code, stderr } = await runMonitor(["check", "--sites", "/nonexistent/sites.toml", "--once"]);
  assertEquals(code, 2);
  assertMatch(stderr, /\/nonexistent\/sites\.toml/);
});

Deno.test("check --dry-run prints the resolved sites and never the SASL password or header values", async () => {
  const path = await tempFile(
    `[[site]]\nname = "api"\nurl = "https://api.example.com/"\nheaders = { Authorization = "Bearer s3cr3t-token" }\n`,
  );
  try {
    const { code, stdout, stderr } = await runMonitor(
      [
        "check",
        "--sites",
        path,
        "--dry-run",
        "--brokers",
        "127.0.0.1:9",
        "--sasl-mechanism",
        "scram-sha-512",
        "--sasl-username",
        "alice",
      ],
      { MONITOR_SASL_PASSWORD: "hunter2-password" },
    );
    assertEquals(code, 0, stderr);
    assertMatch(stdout, /site 'api'/);
    assertMatch(stdout, /https:\/\/api\.example\.com\//);
    assertMatch(stdout, /SASL_SSL scram-sha-512 as 'alice'/);
    assertEquals(stdout.includes("hunter2-password") || stderr.includes("hunter2-password"), false);
    assertEquals(stdout.includes("s3cr3t-token"), false);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("check --dry-run shows a site url's credentials, from ${NAME} references, as ***@", async () => {
  const path = await tempFile(
    `[[site]]\nname = "shop"\nurl = "https://\${SHOP_USER}:\${SHOP_PASSWORD}@shop.example.com/admin"\n` +
      `headers = { X-Key = "\${API_KEY}" }\n`,
  );
  try {
    const { code, stdout, stderr } = await runMonitor(["check", "--sites", path, "--dry-run"], {
      SHOP_USER: "shopkeeper",
      SHOP_PASSWORD: "pw-from-env",
      API_KEY: "key-from-env",
    });
    assertEquals(code, 0, stderr);
    assertEquals(stdout.split("\n")[1], "  url:              https://***@shop.example.com/admin");
    assertEquals(/shopkeeper|pw-from-env|key-from-env/.test(stdout + stderr), false);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a sites file that refers to an unset variable exits 2 with the file, line and variable", async () => {
  const path = await tempFile(
    `[[site]]\nname = "api"\nurl = "https://api.example.com/"\nheaders = { X-Key = "\${API_KEY}" }\n`,
  );
  try {
    const { code, stdout, stderr } = await runMonitor(["check", "--sites", path, "--dry-run"]);
    assertEquals([code, stdout], [2, ""]);
    assertEquals(
      stderr,
      `monitor check: ${path}:4: Cannot load site 'api': key 'headers.X-Key' uses environment variable 'API_KEY', which is not set\n`,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("SASL without MONITOR_SASL_PASSWORD exits 2 with a clear message", async () => {
  const { code, stderr } = await runMonitor([
    "check",
    "--dry-run",
    "--brokers",
    "127.0.0.1:9",
    "--sasl-mechanism",
    "plain",
    "--sasl-username",
    "u",
  ]);
  assertEquals(code, 2);
  assertMatch(stderr, /Cannot use SASL: the environment variable MONITOR_SASL_PASSWORD is not set/);
});

Deno.test("sink rejects a fetch size it cannot read, from its flag or its environment variable, with exit 2", async () => {
  const flag = await runMonitor(["sink", "--brokers", "127.0.0.1:9092", "--fetch-partition-bytes", "1MB"]);
  assertEquals([flag.code, flag.stderr.split("\n")[0]], [
    2,
    `monitor sink: Cannot use flag '--fetch-partition-bytes': expected a size such as "512KiB" or "4MiB", ` +
    `from 1024 bytes to 2047MiB: got '1MB'`,
  ]);
  const env = await runMonitor(["sink", "--brokers", "127.0.0.1:9092"], {
    MONITOR_PARTITIONS_IN_FLIGHT: "0",
  });
  assertEquals([env.code, env.stderr.split("\n")[0]], [
    2,
    "monitor sink: Cannot use flag '--partitions-in-flight': expected a whole number of at least 1: got '0'",
  ]);
});

Deno.test("sink refuses history tiers kept in the wrong order (a rollup dropped before the tier below it), with exit 2", async () => {
  const cases: [string[], string][] = [
    [
      ["--daily-retention", "90"],
      "Cannot use flag '--daily-retention': expected 0 or 400 or more to keep the rollups at least as long as " +
      "'--hourly-retention' keeps its tier: got '90'",
    ],
    [
      ["--retention", "0"],
      "Cannot use flag '--hourly-retention': expected 0 (for ever) to keep the rollups at least as long as " +
      "'--retention' keeps its tier: got '400'",
    ],
    [
      ["--retention", "60", "--hourly-retention", "45"],
      "Cannot use flag '--hourly-retention': expected 0 or 60 or more to keep the rollups at least as long as " +
      "'--retention' keeps its tier: got '45'",
    ],
  ];
  for (const [flags, message] of cases) {
    const { code, stderr } = await runMonitor(["sink", "--brokers", "127.0.0.1:9092", ...flags]);
    assertEquals([code, stderr.split("\n")[0]], [2, `monitor sink: ${message}`], flags.join(" "));
  }
});

Deno.test("sink without a database URL exits 2", async () => {
  const { code, stderr } = await runMonitor(["sink", "--brokers", "127.0.0.1:9092"]);
  assertEquals(code, 2);
  assertMatch(stderr, /Cannot connect to the database: set '--database-url' or DATABASE_URL/);
});

Deno.test("tests run monitor with the permissions and V8 flags of the binary (dev/permissions.sh)", async () => {
  const { PERMISSIONS } = await import("./_cli.ts");
  const script = await Deno.readTextFile(new URL("../dev/permissions.sh", import.meta.url));
  const declared = /^MONITOR_PERMISSIONS=\(([^)]*)\)$/m.exec(script)?.[1]?.split(/\s+/);
  assertEquals(declared, PERMISSIONS);
});

Deno.test("check --once stops at SIGINT: the probe under way is cancelled, not published, and it exits 1", async () => {
  const requested = Promise.withResolvers<void>();
  const closing = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
    requested.resolve();
    await delay(30_000, { signal: closing.signal }).catch(() => {});
    return new Response("late");
  });
  const path = await tempFile(
    `[[site]]\nname = "silent"\nurl = "http://127.0.0.1:${server.addr.port}/"\ninterval = "60s"\n` +
      `timeout = "40s"\n`,
  );
  const agent = startMonitor(["check", "--sites", path, "--once"]);
  try {
    await deadline(requested.promise, 10_000);
    const started = Date.now();
    const { code, stderr } = await agent.stop("SIGINT");
    assertEquals(code, 1, stderr);
    const tookMs = Date.now() - started;
    assertEquals(tookMs < 5_000, true, `took ${tookMs} ms to stop`);
    assertMatch(stderr, /interrupted: sites not probed or cancelled.*cancelled=1/);
  } finally {
    await agent.stop("SIGKILL");
    closing.abort();
    await server.shutdown();
    await Deno.remove(path);
  }
});

Deno.test("check refuses an agent or region name the sink would refuse: exit 2 and the flag named", async () => {
  for (
    const [flag, value, expected] of [
      ["--region", "", "it must be"],
      ["--agent", "a\tb", "it must be"],
      ["--region", "é".repeat(201), "it must be at most 200 UTF-16 code units long"],
    ]
  ) {
    const { code, stderr } = await runMonitor(["check", "--dry-run", "--sites", "sites.toml", flag!, value!]);
    assertEquals(code, 2, stderr);
    assertMatch(stderr, new RegExp(`Cannot use flag '${flag}': ${expected}`));
  }
});
