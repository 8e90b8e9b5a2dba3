/**
 * `monitor check --once`: probes every site once, prints the results (NDJSON, or a table on a terminal),
 * publishes them when brokers are configured, and exits 0 only if every site is up and every result was
 * delivered.
 *
 * @module
 */
import type { CheckConfig, Output } from "./command.ts";
import type { Logger } from "../log.ts";
import type { CheckResult } from "../message.ts";
import { formatOnceTable } from "./once_table.ts";
import { openProber, openSink } from "./result_sink.ts";

/** Runs `--once`; returns the exit code (1 when a site is down or a result was left undelivered). */
export async function runOnce(
  config: CheckConfig,
  log: Logger,
  output: Output,
  ndjson: boolean,
  shutdown: AbortSignal,
): Promise<number> {
  // --once prints its results itself (NDJSON as they come, or a table at the end), Kafka or not.
  const sink = await openSink(config, log, output, false, shutdown);
  // Ctrl-C cancels the probes under way (shown as cancelled, not published: the site did not fail) and
  // starts no more.
  const { probeSite, close } = openProber(config, shutdown);
  const results: CheckResult[] = [];
  let cancelled = 0;
  try {
    const scheduledAt = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < config.sites.length && !shutdown.aborted) {
        const result = await probeSite(config.sites[next++]!, scheduledAt);
        results.push(result);
        if (shutdown.aborted && !result.up) cancelled++;
        else sink.accept(result);
        if (ndjson) output.write(JSON.stringify(result) + "\n");
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.concurrency, config.sites.length) }, worker));
  } finally {
    await close();
  }
  const undelivered = await sink.close();
  if (!ndjson) {
    const order = new Map(config.sites.map((site, index) => [site.name, index]));
    results.sort((a, b) => order.get(a.site)! - order.get(b.site)!);
    output.write(formatOnceTable(results));
  }
  if (undelivered > 0) {
    log.error("results could not be published before the drain timeout", { undelivered });
    return 1;
  }
  if (shutdown.aborted) {
    log.warn("interrupted: sites not probed or cancelled", {
      cancelled,
      not_probed: config.sites.length - results.length,
    });
    return 1;
  }
  return results.every((result) => result.up) ? 0 : 1;
}
