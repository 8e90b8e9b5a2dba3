/**
 * An optional Prometheus endpoint (`--metrics HOST:PORT`): `/metrics` in the text exposition format and
 * `/healthz`. The agent exposes its probe, outbox and drop counts here, the sink its stored, dead-letter and
 * lag figures, so the numbers the summary line logs can also be scraped and alerted on. `/healthz` answers
 * 200 `ok` or, while the program's health function names a reason (a stalled consumer, an unreachable
 * database), 503 with that reason, so an orchestrator can tell "running" from "working".
 *
 * @module
 */
import { UsageError } from "./args.ts";
import type { Logger } from "./log.ts";

/** One metric sample. */
export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  readonly value: number;
  /** Labels of this sample, e.g. `{ partition: "3" }`; samples of one name follow each other. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The port it listens on (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Formats samples in the Prometheus text format.
 *
 * @example
 * ```ts
 * formatMetrics([{ name: "monitor_probes_total", help: "Probes made.", type: "counter", value: 3 }]);
 * // "# HELP monitor_probes_total Probes made.\n# TYPE monitor_probes_total counter\nmonitor_probes_total 3\n"
 * ```
 */
export function formatMetrics(metrics: readonly Metric[]): string {
  let text = "";
  let previous: string | null = null;
  for (const metric of metrics) {
    // HELP and TYPE once per name: the samples of a labelled metric share them.
    if (metric.name !== previous) {
      text += `# HELP ${metric.name} ${metric.help}\n# TYPE ${metric.name} ${metric.type}\n`;
    }
    previous = metric.name;
    const labels = Object.entries(metric.labels ?? {}).map(([key, value]) =>
      `${key}="${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, "\\n")}"`
    );
    const value = Number.isFinite(metric.value) ? metric.value : 0;
    text += `${metric.name}${labels.length > 0 ? `{${labels.join(",")}}` : ""} ${value}\n`;
  }
  return text;
}

/** Parses `HOST:PORT` or `:PORT` (every interface) for `--metrics`. */
export function parseListenAddress(value: string): { hostname: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]*):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port > 65_535) {
    throw new UsageError(`Cannot use flag '--metrics': expected HOST:PORT or :PORT: got '${value}'`);
  }
  const host = match[1]!.replace(/^\[|\]$/g, "");
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

/** Why the program is not healthy, or null when it is. Called on every `/healthz` request. */
export type HealthCheck = () => string | null;

/**
 * Serves `collect()` on `/metrics` and `health()` on `/healthz` until closed. An address that is taken or not
 * this machine's is a {@linkcode UsageError} naming the flag and the address: it is bound at once, before the
 * command starts work.
 *
 * @example
 * ```ts ignore
 * const server = serveMetrics(":9465", () => sink.metrics(), log, () => database.unreachable);
 * // GET /healthz -> 200 "ok\n", or 503 "database unreachable: ...\n"
 * await server.close();
 * ```
 */
export function serveMetrics(
  address: string,
  collect: () => readonly Metric[],
  log: Logger,
  health: HealthCheck = () => null,
): MetricsServer {
  const { hostname, port } = parseListenAddress(address);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = listen(hostname, port, collect, health);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.AddrNotAvailable) {
      const reason = error instanceof Deno.errors.AddrInUse
        ? "it is in use"
        : "it is not an address of this machine";
      throw new UsageError(`Cannot use flag '--metrics': cannot listen on ${hostname}:${port}: ${reason}`, {
        cause: error,
      });
    }
    throw error;
  }
  log.info("serving metrics", { address: `${hostname}:${server.addr.port}`, path: "/metrics" });
  return { port: server.addr.port, close: () => server.shutdown() };
}

function listen(
  hostname: string,
  port: number,
  collect: () => readonly Metric[],
  health: HealthCheck,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname, port, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/metrics") {
      return new Response(formatMetrics(collect()), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    if (path === "/healthz") {
      const reason = health();
      return reason === null ? new Response("ok\n") : new Response(`${reason}\n`, {
        status: 503,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    return new Response("not found\n", { status: 404 });
  });
}
