/**
 * The compact table `monitor check --once` prints on a terminal.
 *
 * @module
 */
import type { CheckResult } from "../message.ts";

/**
 * Formats results as an aligned table: site, verdict, status, total time, error.
 *
 * @example
 * ```ts
 * import type { CheckResult } from "../message.ts";
 * declare const results: CheckResult[];
 * formatOnceTable(results);
 * // SITE  UP    STATUS  TIME      ERROR
 * // home  up    200     12.3 ms
 * ```
 */
export function formatOnceTable(results: readonly CheckResult[]): string {
  const rows = results.map((result) => [
    result.site,
    result.up ? "up" : "DOWN",
    result.status === null ? "-" : String(result.status),
    `${result.duration_ms.toFixed(1)} ms`,
    result.error ? `${result.error.kind}: ${result.error.message}` : "",
  ]);
  const header = ["SITE", "UP", "STATUS", "TIME", "ERROR"];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length))
  );
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  const down = results.filter((result) => !result.up).length;
  return [line(header), ...rows.map(line), "", `${results.length - down} up, ${down} down`, ""].join("\n");
}
