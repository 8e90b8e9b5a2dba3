/**
 * The statements that write a batch's `location_state` rows for the writer's transaction: an update of each
 * existing row, only if it still holds what the transaction read, and an insert of each new one.
 *
 * @module
 */
import type postgres from "postgres";
import { boolArray, numberArray, textArray } from "./_arrays.ts";
import { cleanText, microsToTimestamp } from "./_values.ts";
import { histogramLiteral } from "./latency.ts";
import type { Accumulator } from "./rollups.ts";
import type { LocationState } from "./state.ts";

/** A `location_state` row to write: its state, its current-hour counts, and whether it exists (then it is
 * updated only if it still holds `previous`, the check id and counts read earlier in the transaction). */
export interface LocationRow {
  readonly siteId: number;
  readonly state: LocationState;
  readonly accumulator: Accumulator;
  readonly previous: { readonly checkId: string; readonly accChecks: number } | null;
}

/** An error the sink retries: another writer changed a row this batch read, or took from the state copy. */
export function movedUnderneath(what: string): Error {
  return Object.assign(new Error(`Cannot store ${what}: another writer changed it in the meantime`), {
    code: "40001",
  });
}

/** The statements that update existing `location_state` rows (if unchanged since read) and insert new ones. */
export function writeLocations(
  tx: postgres.TransactionSql,
  rows: readonly LocationRow[],
): (Promise<unknown> | null)[] {
  // Nearly every row of a batch has the batch's clock and the same current hour: each converted once.
  const seenText = lastOf((ms: number) => new Date(ms).toISOString());
  const hourText = lastOf(microsToTimestamp);
  const columns = (list: readonly LocationRow[]) => {
    const pick = <T>(f: (row: LocationRow) => T) => list.map(f);
    return tx`unnest(
      ${numberArray(pick((r) => r.siteId))}::int4[],
      ${numberArray(pick((r) => r.state.locationId))}::int4[],
      ${textArray(pick((r) => r.state.checkId))}::uuid[],
      ${textArray(pick((r) => r.state.checkedAt))}::timestamptz[],
      ${textArray(pick((r) => seenText(r.state.seenAtMs)))}::timestamptz[],
      ${textArray(pick((r) => r.state.since))}::timestamptz[],
      ${numberArray(pick((r) => r.state.agentId))}::int4[],
      ${numberArray(pick((r) => r.state.consecutiveFailures))}::int4[],
      ${numberArray(pick((r) => r.state.intervalMs))}::int4[],
      ${numberArray(pick((r) => r.state.durationMs))}::real[],
      ${numberArray(pick((r) => r.state.status))}::int2[],
      ${boolArray(pick((r) => r.state.up))}::bool[],
      ${textArray(pick((r) => r.state.errorKind))}::check_error_kind[],
      ${
      textArray(pick((r) => r.state.errorMessage === null ? null : cleanText(r.state.errorMessage)))
    }::text[],
      ${
      textArray(pick((r) => r.accumulator.hour === null ? null : hourText(r.accumulator.hour)))
    }::timestamptz[],
      ${numberArray(pick((r) => r.accumulator.checks))}::int4[],
      ${numberArray(pick((r) => r.accumulator.upChecks))}::int4[],
      ${textArray(pick((r) => histogramLiteral(r.accumulator.errors)))}::text[],
      ${textArray(pick((r) => histogramLiteral(r.accumulator.latency)))}::text[],
      ${textArray(pick((r) => r.previous?.checkId ?? null))}::uuid[],
      ${numberArray(pick((r) => r.previous?.accChecks ?? null))}::int4[]
    ) as t(site_id, location_id, check_id, checked_at, seen_at, since, agent_id, failures, interval_ms, duration_ms,
           status, up, error_kind, error_message, acc_hour, acc_checks, acc_up_checks, acc_errors, acc_latency,
           previous_check_id, previous_acc_checks)`;
  };
  const existing = rows.filter((r) => r.previous !== null);
  const added = rows.filter((r) => r.previous === null);
  const update = existing.length === 0 ? null : tx`
    update location_state l set
      check_id = t.check_id, checked_at = t.checked_at, seen_at = t.seen_at, since = t.since, agent_id = t.agent_id,
      consecutive_failures = t.failures, interval_ms = t.interval_ms, duration_ms = t.duration_ms,
      status = t.status, up = t.up, error_kind = t.error_kind, error_message = t.error_message,
      acc_hour = t.acc_hour, acc_checks = t.acc_checks, acc_up_checks = t.acc_up_checks,
      acc_error_counts = t.acc_errors::int4[], acc_latency = t.acc_latency::int4[]
    from ${columns(existing)}
    where l.site_id = t.site_id and l.location_id = t.location_id and l.check_id = t.previous_check_id
      and l.acc_checks = t.previous_acc_checks`.then((result) => {
    if (result.count !== existing.length) throw movedUnderneath("location state");
  });
  const insert = added.length === 0 ? null : tx`
    insert into location_state (site_id, location_id, check_id, checked_at, seen_at, since, agent_id,
                                consecutive_failures, interval_ms, duration_ms, status, up, error_kind,
                                error_message, acc_hour, acc_checks, acc_up_checks, acc_error_counts, acc_latency)
    select t.site_id, t.location_id, t.check_id, t.checked_at, t.seen_at, t.since, t.agent_id, t.failures,
           t.interval_ms, t.duration_ms, t.status, t.up, t.error_kind, t.error_message, t.acc_hour, t.acc_checks,
           t.acc_up_checks, t.acc_errors::int4[], t.acc_latency::int4[]
    from ${columns(added)}
    order by t.site_id, t.location_id
    on conflict do nothing`.then((result) => {
    if (result.count !== added.length) throw movedUnderneath("location state");
  });
  return [update, insert];
}

/** `convert`, remembering its last argument and result. */
function lastOf<A, R>(convert: (value: A) => R): (value: A) => R {
  let last: { value: A; result: R } | null = null;
  return (value) => {
    if (last === null || last.value !== value) last = { value, result: convert(value) };
    return last.result;
  };
}
