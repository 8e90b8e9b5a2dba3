/**
 * "What went wrong lately?": a site's most recent failed checks with their error, from the raw checks (the
 * primary key (site_id, started_at) serves it, newest first).
 *
 * @module
 */
import type postgres from "postgres";

/** One failed check. */
export interface FailedCheck {
  readonly startedAt: Date;
  /** The agent's region, or its name when it has none. */
  readonly location: string;
  readonly agent: string;
  readonly status: number | null;
  readonly durationMs: number;
  readonly errorKind: string | null;
  readonly errorMessage: string | null;
}

interface Row {
  started_at: Date;
  location: string;
  agent: string;
  status: number | null;
  duration_ms: number;
  error_kind: string | null;
  error_message: string | null;
}

/**
 * Reads the `limit` most recent failed checks of `site` within the last `days` days.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const failures = await readRecentFailures(sql, "shop", 20);
 * ```
 */
export async function readRecentFailures(
  sql: postgres.Sql,
  site: string,
  limit = 20,
  days = 7,
): Promise<FailedCheck[]> {
  const rows = await sql<Row[]>`
    select c.started_at, coalesce(a.region, a.name) as location, a.name as agent, c.status::int4 as status,
           c.duration_ms::float8 as duration_ms, c.error_kind::text as error_kind, c.error_message
    from checks c
    join agents a on a.id = c.agent_id
    where c.site_id = (select id from sites where name = ${site})
      and c.started_at > now() - make_interval(days => ${days})
      and not c.up
    order by c.started_at desc
    limit ${limit}`;
  return rows.map((row) => ({
    startedAt: row.started_at,
    location: row.location,
    agent: row.agent,
    status: row.status,
    durationMs: row.duration_ms,
    errorKind: row.error_kind,
    errorMessage: row.error_message,
  }));
}
