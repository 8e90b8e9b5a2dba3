/**
 * "When was a site not up, how badly, and why?": rows of `incidents`, open ones first, then the most recent.
 *
 * @module
 */
import type postgres from "postgres";

/** One period a site was not up. */
export interface IncidentRow {
  readonly site: string;
  readonly startedAt: Date;
  /** Null while open. */
  readonly endedAt: Date | null;
  /** `degraded` or `down`. */
  readonly worstState: string;
  /** The locations that saw it. */
  readonly locations: readonly string[];
  /** The first error seen. */
  readonly errorKind: string | null;
  readonly errorMessage: string | null;
}

/** Which incidents to read. */
export interface IncidentFilter {
  /** One site's; default every site's. */
  readonly site?: string | null;
  /** Only open ones. */
  readonly open?: boolean;
  /** Only those still open or ended after this. */
  readonly since?: Date | null;
  /** At most this many; default 100. */
  readonly limit?: number;
}

interface Row {
  site: string;
  started_at: Date;
  ended_at: Date | null;
  worst_state: string;
  locations: string[] | null;
  error_kind: string | null;
  error_message: string | null;
}

/**
 * Reads incidents, open ones first, then by start, newest first.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const open = await readIncidents(sql, { open: true });
 * ```
 */
export async function readIncidents(sql: postgres.Sql, filter: IncidentFilter = {}): Promise<IncidentRow[]> {
  const site = filter.site ?? null;
  const since = filter.since ?? null;
  const rows = await sql<Row[]>`
    -- As JSON: the sink's and the read side's connections fetch no array types (connect.ts), so a text[]
    -- would arrive as its text form.
    select site, started_at, ended_at, worst_state, to_json(locations) as locations,
           first_error_kind::text as error_kind, first_error_message as error_message
    from incidents
    where (${site}::text is null or site = ${site}::text)
      and (not ${filter.open ?? false}::bool or ended_at is null)
      and (${since}::timestamptz is null or ended_at is null or ended_at >= ${since}::timestamptz)
    order by ended_at is not null, started_at desc, site
    limit ${filter.limit ?? 100}`;
  return rows.map((row) => ({
    site: row.site,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    worstState: row.worst_state,
    locations: row.locations ?? [],
    errorKind: row.error_kind,
    errorMessage: row.error_message,
  }));
}
