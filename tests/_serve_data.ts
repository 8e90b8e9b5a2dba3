/**
 * The database the read-side tests look at, filled through the real writer: three sites probed every 10 minutes
 * from two locations (eu-west and us-east), one up, one degraded with an ended and an open incident, one stale
 * (its only location last reported 70 minutes ago, silent since 40) whose name is hostile HTML, and an error
 * message with HTML in it.
 * Times are relative to the moment of filling, so staleness (judged by the database's clock) is as described.
 *
 * @module
 */
import type postgres from "postgres";
import type { CheckResult } from "../src/message.ts";
import { migrate } from "../src/db/migrate.ts";
import type { IncomingCheck } from "../src/db/batch.ts";
import { writeBatch } from "../src/db/writer.ts";
import { silentLogger } from "../src/log.ts";
import { makeCheck } from "./_checks.ts";

/** The stale site's name: markup that must render as text. */
export const HOSTILE = "<script>alert(1)</script>";
/** The error message of beta's failures from us-east. */
export const HOSTILE_ERROR = "Status 503 is not in 200-399: <b>Service Unavailable</b>";

/** What the filler wrote, for exact expectations. */
export interface ServeData {
  /** The minute the checks are relative to (seconds and milliseconds zero). */
  readonly t: Date;
  readonly checks: readonly CheckResult[];
}

const MINUTE = 60_000;

function check(
  site: string,
  location: "eu-west" | "us-east",
  at: Date,
  up: boolean,
  durationMs: number,
  extra: Partial<CheckResult> = {},
): CheckResult {
  return makeCheck(site, at, {
    up,
    url: site === HOSTILE ? "http://127.0.0.1:9/?q=<i>x</i>" : `https://${site}.example.test/`,
    agent: `agent-${location}`,
    region: location,
    duration_ms: durationMs,
    ttfb_ms: durationMs / 2,
    status: up ? 200 : 503,
    error: up ? null : { kind: "http", message: HOSTILE_ERROR },
    interval_ms: 10 * MINUTE,
    ...extra,
  });
}

/** The checks: minutes before `t`, per site and location. */
export function serveChecks(t: Date): CheckResult[] {
  const at = (minutes: number) => new Date(t.getTime() - minutes * MINUTE);
  const cert = { cert_expires_at: new Date(t.getTime() + 40 * 86_400_000).toISOString() };
  const checks: CheckResult[] = [];
  for (const minutes of [50, 40, 30, 20, 10, 1]) {
    checks.push(check("alpha", "eu-west", at(minutes), true, 100, cert));
    checks.push(check("alpha", "us-east", at(minutes), true, 200, cert));
    checks.push(check("beta", "eu-west", at(minutes), true, 50));
  }
  // beta from us-east: down 45..41 minutes ago (an ended incident), down again from 10 minutes ago (open).
  for (
    const [minutes, up] of [[50, true], [45, false], [40, true], [30, true], [20, true], [10, false], [
      1,
      false,
    ]] as const
  ) {
    checks.push(check("beta", "us-east", at(minutes), up, up ? 80 : 3000));
  }
  for (const minutes of [90, 80, 70]) checks.push(check(HOSTILE, "eu-west", at(minutes), true, 20));
  return checks;
}

/** `only`: the sites to write (default all). See {@linkcode writeChecks}. */
export async function fillServeDatabase(
  sql: postgres.Sql,
  t: Date,
  only: readonly string[] | null = null,
): Promise<ServeData> {
  const checks = serveChecks(t).filter((check) => only === null || only.includes(check.site));
  await writeChecks(sql, checks);
  return { t, checks };
}

/**
 * Migrates a fresh database and writes `checks` through the writer in time order, in batches, as a sink that
 * keeps up would: each batch with the sink's clock at its newest check (the clock staleness is judged
 * by), a batch spanning at most 30 s of the last two hours, or a day before them.
 */
export async function writeChecks(sql: postgres.Sql, checks: readonly CheckResult[]): Promise<void> {
  await migrate(sql, silentLogger);
  const ordered = checks.slice().sort((a, b) => a.started_at.localeCompare(b.started_at));
  const recent = Date.parse(ordered.at(-1)?.started_at ?? "1970-01-01T00:00:00Z") - 2 * 3_600_000;
  let offset = 0;
  for (let start = 0; start < ordered.length;) {
    const first = Date.parse(ordered[start]!.started_at);
    // A day's batch stops where the last two hours begin: reaching into them would store an old check with a
    // recent clock (the batch's newest), and a site whose agents stopped 20 minutes ago would look fresh.
    const until = first >= recent ? first + 30_000 : Math.min(first + 86_400_000, recent);
    let end = start + 1;
    while (end < ordered.length && end - start < 5_000 && Date.parse(ordered[end]!.started_at) < until) end++;
    const batch: IncomingCheck[] = ordered.slice(start, end).map((check) => ({
      partition: 0,
      offset: String(offset++),
      check,
    }));
    await writeBatch(sql, {
      group: "serve-test",
      topic: "monitor.checks",
      checks: batch,
      deadLetters: [],
      progress: [{ partition: 0, firstOffset: batch[0]!.offset, nextOffset: String(offset) }],
    }, { now: new Date(ordered[end - 1]!.started_at) });
    start = end;
  }
}
