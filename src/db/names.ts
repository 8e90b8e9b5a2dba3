/**
 * The small tables that keep strings off the check rows: `sites` (name → id, with the current URL and regex)
 * and `agents` ((name, region) → id). Used by the writer inside its transaction.
 *
 * @module
 */
import type postgres from "postgres";
import { textArray } from "./_arrays.ts";
import type { CheckResult } from "../message.ts";
import { cleanText } from "./_values.ts";

/** A check with its started_at in microseconds (`timestampMicros`), computed once per batch. */
export interface TimedCheck {
  readonly check: CheckResult;
  readonly micros: bigint;
}

/** A check with its database ids. */
export interface ResolvedCheck extends TimedCheck {
  /** The check id as lower-case UUID text. */
  readonly checkId: string;
  readonly siteId: number;
  readonly agentId: number;
}

/** Agent ids by (name, region). */
export interface AgentIds {
  get(name: string, region: string | null): number;
}

/** How far last_seen must move before a batch rewrites a site's row for it. */
export const LAST_SEEN_STEP = "1 hour";

interface SiteSeen {
  name: string;
  url: string;
  regex: string | null;
  first: string;
  firstMicros: bigint;
  last: string;
  lastMicros: bigint;
}

/**
 * Makes sure every site of `checks` has a row and returns the ids by name.
 *
 * `url` and `regex` become those of the newest check unless the stored row has seen a newer one; `first_seen`
 * widens to the oldest started_at, and `last_seen` to the newest once it has moved by {@linkcode LAST_SEEN_STEP}
 * (rewriting every site's row in every batch would halve the write rate). Rows that change are locked in name
 * order, so concurrent writers cannot deadlock; only missing names are inserted, so the identity sequence is
 * not spent on every batch.
 *
 * @param now A started_at later than this counts as this, so an agent with a clock years ahead cannot freeze
 *   the URL until then.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * declare const tx: postgres.TransactionSql;
 * declare const checks: TimedCheck[];
 * const ids = await upsertSites(tx, checks, new Date()); // Map { "example" => 1 }
 * ```
 */
export async function upsertSites(
  tx: postgres.TransactionSql,
  checks: readonly TimedCheck[],
  now: Date,
): Promise<Map<string, number>> {
  const nowMicros = BigInt(now.getTime()) * 1000n;
  const seen = new Map<string, SiteSeen>();
  for (const { check, micros: startedMicros } of checks) {
    const future = startedMicros > nowMicros;
    const time = future ? now.toISOString() : check.started_at;
    const micros = future ? nowMicros : startedMicros;
    const site = seen.get(check.site);
    if (site === undefined) {
      seen.set(check.site, {
        name: check.site,
        url: cleanText(check.url),
        regex: check.regex === null ? null : cleanText(check.regex),
        first: time,
        firstMicros: micros,
        last: time,
        lastMicros: micros,
      });
      continue;
    }
    if (micros < site.firstMicros) [site.first, site.firstMicros] = [time, micros];
    if (micros >= site.lastMicros) {
      site.last = time;
      site.lastMicros = micros;
      site.url = check.url;
      site.regex = check.regex;
    }
  }
  // Cleaned once per site, not once per check.
  for (const site of seen.values()) {
    site.url = cleanText(site.url);
    site.regex = site.regex === null ? null : cleanText(site.regex);
  }
  const ids = new Map<string, number>();
  let pending = [...seen.values()];
  // Normally one pass: update what exists, insert the rest. A name another writer inserts at the same moment is
  // missed by both statements of the pass, and found by the next.
  for (let pass = 0; pending.length > 0; pass++) {
    if (pass === 3) throw new Error(`Cannot store sites: no id for '${pending[0]!.name}' after 3 passes`);
    const columns = siteColumns(pending);
    // One statement: the ids of the sites that exist, and an update of those rows whose URL, regex or
    // first_seen changed or whose last_seen moved by LAST_SEEN_STEP (not every batch rewrites every site).
    const found = await tx<{ id: number; name: string }[]>`
      with t as (
        select * from unnest(${columns.names}::text[], ${columns.urls}::text[], ${columns.regexes}::text[],
                             ${columns.firsts}::timestamptz[], ${columns.lasts}::timestamptz[])
          as t(name, url, regex, first_seen, last_seen)
      ),
      changed as (
        update sites s set
          url = case when c.last_seen >= s.last_seen then c.url else s.url end,
          regex = case when c.last_seen >= s.last_seen then c.regex else s.regex end,
          first_seen = least(s.first_seen, c.first_seen),
          last_seen = greatest(s.last_seen, c.last_seen)
        from (
          select s2.id, t.*
          from sites s2 join t on t.name = s2.name
          where t.first_seen < s2.first_seen
             or t.last_seen >= s2.last_seen + ${LAST_SEEN_STEP}::interval
             or (t.last_seen >= s2.last_seen and (t.url <> s2.url or t.regex is distinct from s2.regex))
          order by s2.name
          for update of s2
        ) c
        where s.id = c.id
      )
      select s.id, s.name from sites s join t on t.name = s.name`;
    for (const row of found) ids.set(row.name, row.id);
    const missing = pending.filter((site) => !ids.has(site.name));
    if (missing.length === 0) break;
    const insertColumns = siteColumns(missing);
    const inserted = await tx<{ id: number; name: string }[]>`
      insert into sites (name, url, regex, first_seen, last_seen)
      select * from unnest(${insertColumns.names}::text[], ${insertColumns.urls}::text[],
                           ${insertColumns.regexes}::text[], ${insertColumns.firsts}::timestamptz[],
                           ${insertColumns.lasts}::timestamptz[]) as t(name, url, regex, first_seen, last_seen)
      order by name
      on conflict (name) do nothing
      returning id, name`;
    for (const row of inserted) ids.set(row.name, row.id);
    pending = missing.filter((site) => !ids.has(site.name));
  }
  return ids;
}

function siteColumns(sites: readonly SiteSeen[]) {
  const sorted = [...sites].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    names: textArray(sorted.map((site) => site.name)),
    urls: textArray(sorted.map((site) => site.url)),
    regexes: textArray(sorted.map((site) => site.regex)),
    firsts: textArray(sorted.map((site) => site.first)),
    lasts: textArray(sorted.map((site) => site.last)),
  };
}

/**
 * Makes sure every (agent, region) of `checks` has a row and returns the ids. Agents never change, so the
 * common case is one SELECT.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import type { CheckResult } from "../message.ts";
 * declare const tx: postgres.TransactionSql;
 * declare const checks: CheckResult[];
 * const agents = await upsertAgents(tx, checks);
 * agents.get("probe-1", "eu-west"); // 1
 * ```
 */
export async function upsertAgents(
  tx: postgres.TransactionSql,
  checks: readonly CheckResult[],
): Promise<AgentIds> {
  // Agent names and regions hold no control characters (the decoder rejects them), so these separators are
  // unambiguous and far cheaper per check than JSON.
  const key = (name: string, region: string | null) =>
    region === null ? `${name}\u0001` : `${name}\u0000${region}`;
  const wanted = new Map<string, { name: string; region: string | null }>();
  // A batch's checks come from a few agents, mostly one after another: a check from the same agent and region
  // as the one before makes no key (the decoder gives repeated names one string, so this compares references).
  let last: CheckResult | null = null;
  for (const check of checks) {
    if (last !== null && check.agent === last.agent && check.region === last.region) continue;
    last = check;
    const k = key(check.agent, check.region);
    if (!wanted.has(k)) wanted.set(k, { name: check.agent, region: check.region });
  }
  const ids = new Map<string, number>();
  for (let pass = 0; ids.size < wanted.size; pass++) {
    const missing = [...wanted].filter(([k]) => !ids.has(k)).map(([, agent]) => agent);
    if (pass === 3) throw new Error(`Cannot store agents: no id for '${missing[0]!.name}' after 3 passes`);
    if (pass > 0) {
      await tx`
        insert into agents (name, region)
        select * from unnest(${textArray(missing.map((a) => a.name))}::text[],
                             ${textArray(missing.map((a) => a.region))}::text[]) as t(name, region)
        order by name, region
        on conflict do nothing`;
    }
    const rows = await tx<{ id: number; name: string; region: string | null }[]>`
      select a.id, a.name, a.region
      from agents a
      join unnest(${textArray(missing.map((a) => a.name))}::text[],
                  ${textArray(missing.map((a) => a.region))}::text[]) as t(name, region)
        on a.name = t.name and a.region is not distinct from t.region`;
    for (const row of rows) ids.set(key(row.name, row.region), row.id);
  }
  let lastName: string | null = null;
  let lastRegion: string | null = null;
  let lastId = 0;
  return {
    get(name, region) {
      if (name === lastName && region === lastRegion) return lastId;
      const id = ids.get(key(name, region));
      if (id === undefined) throw new Error(`Cannot find agent '${name}': it was not in the batch`);
      lastName = name;
      lastRegion = region;
      lastId = id;
      return id;
    },
  };
}

/** A check's location: its agent's region label, or the agent name when there is none. */
export function locationOf(check: CheckResult): string {
  return check.region ?? check.agent;
}

/**
 * Makes sure every location of `checks` has a row in `locations` and returns the ids by name. Locations never
 * change, so the common case is one SELECT.
 *
 * @example
 * ```ts
 * import type postgres from "postgres";
 * import type { CheckResult } from "../message.ts";
 * declare const tx: postgres.TransactionSql;
 * declare const checks: CheckResult[];
 * const ids = await upsertLocations(tx, checks); // Map { "eu-west" => 1 }
 * ```
 */
export async function upsertLocations(
  tx: postgres.TransactionSql,
  checks: readonly CheckResult[],
): Promise<Map<string, number>> {
  const wanted = new Set(checks.map(locationOf));
  const ids = new Map<string, number>();
  for (let pass = 0; ids.size < wanted.size; pass++) {
    const missing = [...wanted].filter((name) => !ids.has(name)).sort();
    if (pass === 3) throw new Error(`Cannot store locations: no id for '${missing[0]}' after 3 passes`);
    if (pass > 0) {
      await tx`
        insert into locations (name) select * from unnest(${textArray(missing)}::text[]) order by 1
        on conflict do nothing`;
    }
    const rows = await tx<{ id: number; name: string }[]>`
      select id, name from locations where name = any(${textArray(missing)}::text[])`;
    for (const row of rows) ids.set(row.name, row.id);
  }
  return ids;
}
