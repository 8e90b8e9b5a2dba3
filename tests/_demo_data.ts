/**
 * A believable history for the browser test and its screenshots: eight sites seen from two locations, hourly
 * checks for 90 days and checks every 30 s for the last 30 minutes, with a bad day here and there, one site
 * degraded, one down and one stale now. Deterministic (a seeded generator), relative to `t`.
 *
 * @module
 */
import type { CheckResult } from "../src/message.ts";
import { makeCheck } from "./_checks.ts";

/** The sites, with their typical response time in ms. */
export const DEMO_SITES: readonly (readonly [string, number])[] = [
  ["shop", 120],
  ["api", 45],
  ["blog", 300],
  ["docs", 80],
  ["payments", 200],
  ["search", 150],
  ["cdn-edge", 25],
  ["status-page", 60],
];

/** What each site is now. */
export const DEMO_STATES: Readonly<Record<string, string>> = {
  shop: "up",
  api: "up",
  blog: "stale",
  docs: "up",
  payments: "up",
  search: "degraded",
  "cdn-edge": "down",
  "status-page": "up",
};

const LOCATIONS = ["eu-west", "us-east"] as const;

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every check of the demo history, oldest first. */
export function demoChecks(t: Date): CheckResult[] {
  const next = random(42);
  const checks: CheckResult[] = [];
  const hour = 3_600_000;
  const start = Math.floor(t.getTime() / hour) * hour - 89 * 24 * hour;
  const times: number[] = [];
  for (let at = start; at < t.getTime() - 30 * 60_000; at += hour) times.push(at);
  for (let at = t.getTime() - 30 * 60_000; at < t.getTime(); at += 30_000) times.push(at);
  const badDays = new Map<string, number>([["payments", 60], ["shop", 20], ["search", 75], ["api", 85]]);
  for (const [index, [site, typical]] of DEMO_SITES.entries()) {
    for (const at of times) {
      const minutesAgo = (t.getTime() - at) / 60_000;
      if (site === "blog" && minutesAgo < 20) continue; // its agents stopped: stale
      const day = Math.floor((at - start) / (24 * hour));
      for (const location of LOCATIONS) {
        let up = next() > 0.001;
        if (badDays.get(site) === day && next() < 0.3) up = false;
        if (site === "search" && location === "us-east" && minutesAgo < 6) up = false;
        if (site === "cdn-edge" && minutesAgo < 4) up = false;
        // A failed check two days ago, so the payments page always lists one.
        if (site === "payments" && location === "us-east" && Math.round(minutesAgo / 60) === 50) up = false;
        const spread = Math.exp((next() - 0.5) * 0.8) * (location === "us-east" ? 1.4 : 1);
        const duration = Math.round(typical * spread * (1 + 0.3 * Math.sin(at / (6 * hour) + index)) * 10) /
          10;
        checks.push(makeCheck(site, new Date(at), {
          up,
          url: `https://${site}.example.com/health`,
          agent: `agent-${location}`,
          region: location,
          duration_ms: up ? duration : 5000,
          ttfb_ms: up ? duration / 2 : null,
          status: up ? 200 : site === "cdn-edge" ? null : 503,
          error: up
            ? null
            : site === "cdn-edge"
            ? { kind: "timeout", message: "No response within 5s" }
            : { kind: "http", message: "Status 503 is not in 200-399" },
          cert_expires_at: new Date(t.getTime() + (20 + index * 9) * 86_400_000).toISOString(),
        }));
      }
    }
  }
  return checks.sort((a, b) => a.started_at.localeCompare(b.started_at));
}
