import { assertEquals, assertThrows } from "./_assert.ts";
import { formatMetrics, parseListenAddress, serveMetrics } from "../src/metrics.ts";
import { UsageError } from "../src/args.ts";
import { silentLogger } from "../src/log.ts";

Deno.test("formatMetrics() writes the Prometheus text format", () => {
  assertEquals(
    formatMetrics([
      { name: "monitor_outbox_dropped_total", help: "Results dropped.", type: "counter", value: 4 },
      { name: "monitor_outbox_depth", help: "Results waiting.", type: "gauge", value: NaN },
    ]),
    "# HELP monitor_outbox_dropped_total Results dropped.\n# TYPE monitor_outbox_dropped_total counter\n" +
      "monitor_outbox_dropped_total 4\n# HELP monitor_outbox_depth Results waiting.\n" +
      "# TYPE monitor_outbox_depth gauge\nmonitor_outbox_depth 0\n",
  );
});

Deno.test("formatMetrics() writes labelled samples of one name under one HELP and TYPE", () => {
  const lag = (partition: string, value: number) => ({
    name: "monitor_sink_partition_lag",
    help: "Lag.",
    type: "gauge" as const,
    value,
    labels: { partition, note: 'a "b"\\' },
  });
  assertEquals(
    formatMetrics([lag("0", 3), lag("1", 0)]),
    "# HELP monitor_sink_partition_lag Lag.\n# TYPE monitor_sink_partition_lag gauge\n" +
      'monitor_sink_partition_lag{partition="0",note="a \\"b\\"\\\\"} 3\n' +
      'monitor_sink_partition_lag{partition="1",note="a \\"b\\"\\\\"} 0\n',
  );
});

Deno.test("parseListenAddress() takes HOST:PORT and :PORT, and rejects anything else", () => {
  assertEquals(parseListenAddress("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assertEquals(parseListenAddress(":9464"), { hostname: "0.0.0.0", port: 9464 });
  assertEquals(parseListenAddress("[::1]:80"), { hostname: "::1", port: 80 });
  assertThrows(
    () => parseListenAddress("9464"),
    UsageError,
    "Cannot use flag '--metrics': expected HOST:PORT or :PORT: got '9464'",
  );
});

Deno.test("serveMetrics() answers /metrics with the current values and /healthz with ok", async () => {
  let probes = 1;
  const server = serveMetrics("127.0.0.1:0", () => [
    { name: "monitor_probes_total", help: "Probes.", type: "counter", value: probes },
  ], silentLogger);
  try {
    probes = 7;
    const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assertEquals(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assertEquals((await response.text()).split("\n").at(-2), "monitor_probes_total 7");
    const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assertEquals([health.status, await health.text()], [200, "ok\n"]);
  } finally {
    await server.close();
  }
});

Deno.test("serveMetrics() answers /healthz with 503 and the reason while the health function names one", async () => {
  let reason: string | null = "database unreachable: connect ECONNREFUSED 127.0.0.1:1";
  const server = serveMetrics("127.0.0.1:0", () => [], silentLogger, () => reason);
  try {
    const sick = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assertEquals([sick.status, await sick.text()], [
      503,
      "database unreachable: connect ECONNREFUSED 127.0.0.1:1\n",
    ]);
    reason = null;
    const well = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assertEquals([well.status, await well.text()], [200, "ok\n"]);
  } finally {
    await server.close();
  }
});

Deno.test("serveMetrics() on an address in use, or not this machine's, is a usage error naming flag and address", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const address = `127.0.0.1:${taken.addr.port}`;
    assertThrows(
      () => serveMetrics(address, () => [], silentLogger),
      UsageError,
      `Cannot use flag '--metrics': cannot listen on ${address}: it is in use`,
    );
  } finally {
    taken.close();
  }
  assertThrows(
    () => serveMetrics("192.0.2.1:9464", () => [], silentLogger),
    UsageError,
    "Cannot use flag '--metrics': cannot listen on 192.0.2.1:9464: it is not an address of this machine",
  );
});
