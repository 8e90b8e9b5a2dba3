/**
 * Bulk insertion of `checks` rows, idempotent on the check id: one `INSERT … SELECT FROM unnest(arrays)`.
 * bench/sink/db_insert.ts compares it with `COPY` into a staging table (bench/sink/copy.ts): as fast at
 * 1,000-row batches and within about 20% at 10,000, one statement instead of three, and its errors arrive.
 *
 * @module
 */
import type postgres from "postgres";
import type { CheckResult, ErrorKind } from "../message.ts";
import { cleanText } from "./_values.ts";
import { boolArray, numberArray, textArray } from "./_arrays.ts";

/** One `checks` row, every value already in its database form. */
export interface CheckRow {
  /** Lower-case UUID text (`checkIdToUuid`). */
  readonly id: string;
  readonly siteId: number;
  readonly agentId: number;
  /** RFC 3339 timestamps, as received. */
  readonly scheduledAt: string;
  readonly startedAt: string;
  readonly up: boolean;
  readonly status: number | null;
  readonly ttfbMs: number | null;
  readonly durationMs: number;
  readonly bytes: number | null;
  readonly regexMatched: boolean | null;
  readonly certExpiresAt: string | null;
  readonly errorKind: ErrorKind | null;
  /** Free text without NUL characters (PostgreSQL text cannot hold them). */
  readonly errorMessage: string | null;
}

/**
 * The `checks` row of a decoded check, given its database id (`checkIdToUuid`) and its site and agent ids.
 *
 * @example
 * ```ts
 * import { checkIdToUuid } from "../check_id.ts";
 * import type { CheckResult } from "../message.ts";
 * declare const check: CheckResult;
 * const row = toCheckRow(check, { checkId: checkIdToUuid(check.id), siteId: 7, agentId: 1 });
 * ```
 */
export function toCheckRow(
  check: CheckResult,
  ids: { readonly checkId: string; readonly siteId: number; readonly agentId: number },
): CheckRow {
  return {
    id: ids.checkId,
    siteId: ids.siteId,
    agentId: ids.agentId,
    scheduledAt: check.scheduled_at,
    startedAt: check.started_at,
    up: check.up,
    status: check.status,
    ttfbMs: check.ttfb_ms,
    durationMs: check.duration_ms,
    bytes: check.bytes,
    regexMatched: check.regex_matched,
    certExpiresAt: check.cert_expires_at,
    errorKind: check.error?.kind ?? null,
    errorMessage: check.error === null ? null : cleanText(check.error.message),
  };
}

/**
 * Inserts the rows with one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` (one array literal parameter
 * per column, cast in SQL) and returns how many were new. Rows whose id is already stored, or repeated in `rows`, are not inserted.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * declare const rows: CheckRow[];
 * const inserted = await sql.begin((tx) => insertChecksUnnest(tx, rows));
 * ```
 */
export async function insertChecksUnnest(
  tx: postgres.TransactionSql,
  rows: readonly CheckRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const column = <T>(pick: (row: CheckRow) => T): T[] => rows.map(pick);
  const result = await tx`
    insert into checks (id, site_id, agent_id, scheduled_at, started_at, up, status, ttfb_ms, duration_ms,
                        bytes, regex_matched, cert_expires_at, error_kind, error_message)
    select * from unnest(
      ${textArray(column((r) => r.id))}::uuid[],
      ${numberArray(column((r) => r.siteId))}::int4[],
      ${numberArray(column((r) => r.agentId))}::int4[],
      ${textArray(column((r) => r.scheduledAt))}::timestamptz[],
      ${textArray(column((r) => r.startedAt))}::timestamptz[],
      ${boolArray(column((r) => r.up))}::bool[],
      ${numberArray(column((r) => r.status))}::int2[],
      ${numberArray(column((r) => r.ttfbMs))}::real[],
      ${numberArray(column((r) => r.durationMs))}::real[],
      ${numberArray(column((r) => r.bytes))}::int4[],
      ${boolArray(column((r) => r.regexMatched))}::bool[],
      ${textArray(column((r) => r.certExpiresAt))}::timestamptz[],
      ${textArray(column((r) => r.errorKind))}::check_error_kind[],
      ${textArray(column((r) => r.errorMessage))}::text[]
    )
    on conflict do nothing`;
  return result.count;
}
