/**
 * Checks for the history tests (db_history_test.ts, db_rollups_test.ts and others): one site seen from one
 * location, with unique, ordered ids; and the consecutive batches the writer is handed them in.
 *
 * @module
 */
import type { Batch } from "../src/db/batch.ts";
import type { CheckResult } from "../src/message.ts";

export const HOUR = 3_600_000;
export const DAY = 86_400_000;

let nextId = 1;

/**
 * An up check (200, 40 ms) of `site` from location `region` (agent `agent-<region>`) started at `at` (ms since
 * 1970), probed every 30 s, with a new id; `fields` replace any of its values.
 */
export function locationCheck(
  site: string,
  region: string,
  at: number,
  fields: Partial<CheckResult> = {},
): CheckResult {
  return {
    v: 1,
    id: `01937a00-0000-7000-8000-${(nextId++).toString().padStart(12, "0")}`,
    site,
    url: `https://${site}.example/`,
    agent: `agent-${region}`,
    region,
    scheduled_at: new Date(at).toISOString(),
    started_at: new Date(at).toISOString(),
    up: true,
    status: 200,
    ttfb_ms: null,
    duration_ms: 40,
    bytes: null,
    regex: null,
    regex_matched: null,
    cert_expires_at: null,
    error: null,
    interval_ms: 30_000,
    ...fields,
  };
}

/**
 * Batches of consumer group `group` on partition 0 of "monitor.checks", as the sink would hand them to the
 * writer: each call's checks take the offsets after the previous call's.
 *
 * @example
 * ```ts
 * const batch = consecutiveBatches();
 * batch([locationCheck("shop", "eu", Date.now())]); // offset 0
 * batch([locationCheck("shop", "eu", Date.now())]); // offset 1
 * ```
 */
export function consecutiveBatches(group = "g"): (checks: CheckResult[]) => Batch {
  let offset = 0;
  return (checks) => {
    const first = offset;
    offset += checks.length;
    return {
      group,
      topic: "monitor.checks",
      checks: checks.map((check, i) => ({ partition: 0, offset: String(first + i), check })),
      deadLetters: [],
      progress: [{ partition: 0, firstOffset: String(first), nextOffset: String(offset) }],
    };
  };
}
