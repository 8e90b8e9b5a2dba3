/**
 * The daily buckets of the days before today, kept in memory: they are most of what the front page reads (90
 * days per site for the bars, 7 and 30 days for uptime) and they no longer change, except by a late check.
 * Each site's past days are read once per UTC day and again after `ttlMs` (10 minutes by default), so a late
 * check shows within that time; today's bucket is always read fresh.
 *
 * @module
 */
import type postgres from "postgres";
import { readUptimeBuckets, type UptimeBucket } from "../db/read_uptime.ts";

const DAY_MS = 86_400_000;

interface Entry {
  readonly today: number;
  readonly readAt: number;
  readonly days: readonly UptimeBucket[];
}

/** A cache of past daily buckets by site name. */
export class PastDaysCache {
  readonly #entries = new Map<string, Entry>();

  /** `days`: how many days back (today included) callers ask for; `maxSites`: entries kept at most. */
  constructor(
    private readonly days = 90,
    private readonly ttlMs = 600_000,
    private readonly maxSites = 50_000,
  ) {}

  /**
   * The daily buckets of `sites` from `days - 1` days before today up to now: past days from memory (read for
   * the sites that miss), today's read now.
   */
  async read(sql: postgres.Sql, sites: readonly string[], now: Date): Promise<Map<string, UptimeBucket[]>> {
    const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
    const first = new Date(today - (this.days - 1) * DAY_MS);
    const missing = sites.filter((site) => {
      const entry = this.#entries.get(site);
      return entry === undefined || entry.today !== today || now.getTime() - entry.readAt > this.ttlMs;
    });
    const [past, current] = await Promise.all([
      missing.length === 0
        ? Promise.resolve(new Map<string, UptimeBucket[]>())
        : readUptimeBuckets(sql, missing, first, new Date(today - 1), "day", false),
      readUptimeBuckets(sql, sites, new Date(today), now, "day", false),
    ]);
    if (this.#entries.size + missing.length > this.maxSites) this.#entries.clear();
    for (const site of missing) {
      this.#entries.set(site, { today, readAt: now.getTime(), days: past.get(site) ?? [] });
    }
    const out = new Map<string, UptimeBucket[]>();
    for (const site of sites) {
      out.set(site, [...(this.#entries.get(site)?.days ?? []), ...(current.get(site) ?? [])]);
    }
    return out;
  }
}
