/**
 * `COPY … FROM STDIN` of `checks` rows in COPY's text format, for the benchmarks only: the writer inserts with
 * `unnest` (src/db/check_rows.ts), and bench/sink/db_insert.ts and the raw COPY baseline compare against this.
 *
 * Two caveats of COPY through postgres.js 3.4.9 under Deno, measured here: on a socket with Nagle's algorithm on
 * (the default; `connectDatabase` turns it off) the statement after a COPY waits 40 ms for a delayed ACK; and an
 * error the server raises while reading the data (a bad value, a constraint) is dropped by the client, so the
 * promise never settles and the transaction stays open.
 *
 * @module
 */
import type postgres from "postgres";
import type { CheckRow } from "../../src/db/check_rows.ts";

/** The columns of {@linkcode copyLine}, in its order. */
export const COPY_COLUMNS = [
  "id",
  "site_id",
  "agent_id",
  "scheduled_at",
  "started_at",
  "up",
  "status",
  "ttfb_ms",
  "duration_ms",
  "bytes",
  "regex_matched",
  "cert_expires_at",
  "error_kind",
  "error_message",
] as const;

/** A row in COPY's text format, columns in the order of {@linkcode COPY_COLUMNS}, ending in a newline. */
export function copyLine(row: CheckRow): string {
  return row.id + "\t" + row.siteId + "\t" + row.agentId + "\t" + row.scheduledAt + "\t" + row.startedAt +
    "\t" + (row.up ? "t" : "f") + "\t" + (row.status ?? "\\N") + "\t" + (row.ttfbMs ?? "\\N") + "\t" +
    row.durationMs + "\t" + (row.bytes ?? "\\N") + "\t" +
    (row.regexMatched === null ? "\\N" : row.regexMatched ? "t" : "f") + "\t" + (row.certExpiresAt ?? "\\N") +
    "\t" + (row.errorKind ?? "\\N") + "\t" +
    (row.errorMessage === null ? "\\N" : copyText(row.errorMessage)) + "\n";
}

const COPY_SPECIAL = /[\\\n\r\t]/g;
const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** Escapes text for COPY's text format. */
export function copyText(value: string): string {
  return value.replace(COPY_SPECIAL, (char) => COPY_ESCAPES[char] ?? char);
}

/**
 * Copies `rows` into `table` (`checks` or a staging table like it) with one `COPY … FROM STDIN`, sent in
 * chunks of 1,000 lines.
 */
export async function copyRows(
  sql: postgres.Sql | postgres.TransactionSql,
  table: "checks" | "checks_staging",
  rows: readonly CheckRow[],
): Promise<void> {
  const stream = await sql`copy ${sql(table)} (${sql(COPY_COLUMNS)}) from stdin`.writable();
  const CHUNK = 1_000;
  for (let start = 0; start < rows.length; start += CHUNK) {
    let text = "";
    for (let i = start; i < Math.min(rows.length, start + CHUNK); i++) text += copyLine(rows[i]!);
    if (!stream.write(text)) await new Promise((resolve) => stream.once("drain", resolve));
  }
  await new Promise<void>((resolve, reject) => {
    stream.once("error", reject);
    stream.end(() => resolve());
  });
}

/** How {@linkcode insertChecksCopy} gets its staging table. */
export type Staging =
  /** `create temp table … on commit drop` in every transaction. */
  | "drop"
  /** `create temp table if not exists … on commit delete rows`: made once per connection, emptied at commit. */
  | "reuse";

/**
 * Inserts the rows by `COPY` into a temporary staging table, then `INSERT … SELECT … ON CONFLICT DO NOTHING`;
 * returns how many were new, as `insertChecksUnnest` does. Call it at most once per transaction.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import type { CheckRow } from "../../src/db/check_rows.ts";
 * declare const sql: postgres.Sql;
 * declare const rows: CheckRow[];
 * const inserted = await sql.begin((tx) => insertChecksCopy(tx, rows, "drop"));
 * ```
 */
export async function insertChecksCopy(
  tx: postgres.TransactionSql,
  rows: readonly CheckRow[],
  staging: Staging = "drop",
): Promise<number> {
  if (rows.length === 0) return 0;
  if (staging === "drop") await tx`create temp table checks_staging (like checks) on commit drop`;
  else await tx`create temp table if not exists checks_staging (like checks) on commit delete rows`;
  await copyRows(tx, "checks_staging", rows);
  const result = await tx`insert into checks select * from checks_staging on conflict do nothing`;
  return result.count;
}
