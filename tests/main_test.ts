import { assertEquals, assertMatch } from "./_assert.ts";
import { runMonitor, tempFile } from "./_cli.ts";

Deno.test("monitor --help lists the commands and exits 0", async () => {
  const { code, stdout, stderr } = await runMonitor(["--help"]);
  assertEquals(code, 0);
  assertMatch(stdout, /^monitor \d+\.\d+\.\d+: website availability monitoring/);
  for (const command of ["check", "sink", "migrate", "serve", "status"]) {
    assertMatch(stdout, new RegExp(`\\n  ${command} `));
  }
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
    "monitor: Cannot run command 'chekc': it does not exist (check, sink, migrate, serve or status)\nRun 'monitor --help' for usage.\n",
  );
});

for (const command of ["check", "sink", "migrate", "serve", "status"]) {
  Deno.test(`monitor ${command} --help prints its options and exits 0`, async () => {
    const { code, stdout } = await runMonitor([command, "--help"]);
    assertEquals(code, 0);
    assertMatch(stdout, new RegExp(`^monitor ${command}: `));
    assertMatch(stdout, /OPTIONS:|DATABASE:/);
  });
}

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
  const path = await tempFile(`[[site]]\nname = "a"\nurl = "http://127.0.0.1:1/"\ninterval = "fast"\n`);
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
