/**
 * The read side's uptime figures (src/db/read_uptime.ts, from the rollups, histograms merged in the program)
 * against the contract's functions: `latency_percentile(latency_merge(…))` and `site_uptime()` over the same
 * aligned ranges must give the same numbers.
 */
import { assertEquals, assertThrows } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { fillServeDatabase, HOSTILE } from "./_serve_data.ts";
import {
  addHistogram,
  emptyHistogram,
  histogramPercentile,
  mergeHistograms,
} from "../src/db/_latency_merge.ts";
import { readNow } from "../src/db/read_now.ts";
import {
  readUptimeBuckets,
  readUptimeSummary,
  summarizeBuckets,
  uptimePercent,
} from "../src/db/read_uptime.ts";
import { PastDaysCache } from "../src/serve/past_days.ts";

const db = await createTestDatabase("monitor_read_uptime");
const t = new Date(Math.floor(Date.now() / 60_000) * 60_000);
await fillServeDatabase(db.sql, t);

Deno.test("histograms merged in the program give latency_percentile()'s percentiles", async () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 20; round++) {
    const texts = Array.from({ length: 1 + Math.floor(next() * 5) }, () => {
      const low = Math.floor(next() * 150);
      // NULL elements: the writer's in-place adds leave them in gaps (they count as 0).
      const counts = Array.from(
        { length: 1 + Math.floor(next() * 9) },
        () => next() < 0.15 ? "NULL" : String(Math.floor(next() * 50)),
      );
      return low === 1
        ? `{${counts.join(",")}}`
        : `[${low}:${low + counts.length - 1}]={${counts.join(",")}}`;
    });
    const merged = mergeHistograms(texts);
    for (const p of [0, 0.5, 0.95, 0.99, 1]) {
      const [row] = await db.sql<{ value: number | null }[]>`
        select latency_percentile(latency_merge(h::int[]), ${p}) as value from unnest(${texts}::text[]) h`;
      assertEquals(histogramPercentile(merged, p), row!.value, `round ${round}, p ${p}: ${texts.join(" ")}`);
    }
  }
  assertEquals(histogramPercentile(emptyHistogram(), 0.5), null);
  const gaps = emptyHistogram();
  addHistogram(gaps, "[3:5]={2,NULL,4}");
  assertEquals([...gaps.slice(2, 7)], [0, 2, 0, 4, 0]);
  assertThrows(
    () => addHistogram(emptyHistogram(), "{1,x}"),
    SyntaxError,
    "Cannot read latency histogram: got '{1,x}'",
  );
  assertEquals(uptimePercent(13, 10), 76.923);
  assertEquals(uptimePercent(0, 0), null);
});

Deno.test("summaries and buckets equal site_uptime() over the same whole hours and days", async () => {
  const now = await readNow(db.sql);
  const hour = 3_600_000;
  const day = 86_400_000;
  const from24 = new Date(Math.floor(now.getTime() / hour) * hour - 23 * hour);
  const from30 = new Date(Math.floor(now.getTime() / day) * day - 29 * day);
  const summary = await readUptimeSummary(db.sql, null, now);
  const contract = async (from: Date, width: string | null) =>
    await db.sql<{ site: string; bucket: Date; uptime_percent: string; p50_ms: number; p95_ms: number }[]>`
      select site, bucket, uptime_percent, p50_ms, p95_ms
      from site_uptime(null, ${from}, ${now}, ${width}::interval)`;
  const whole24 = await contract(from24, null);
  const whole30 = await contract(from30, null);
  assertEquals(
    [...summary.entries()].map(([site, s]) => [site, s.uptime24h, s.p95Ms24h, s.uptime30d]).sort(),
    whole24.map((row) => [
      row.site,
      Number(row.uptime_percent),
      row.p95_ms,
      Number(whole30.find((r) => r.site === row.site)!.uptime_percent),
    ]).sort(),
  );
  const hours = await readUptimeBuckets(db.sql, null, from24, now, "hour");
  const byHour = await contract(from24, "1 hour");
  assertEquals(
    [...hours.values()].flat().map((
      b,
    ) => [b.site, b.bucket.toISOString(), b.uptimePercent, b.p50Ms, b.p95Ms]),
    byHour.map((r) => [r.site, r.bucket.toISOString(), Number(r.uptime_percent), r.p50_ms, r.p95_ms]),
  );
});

Deno.test("the front page's figures (from buckets, past days cached) equal the summary read in SQL", async () => {
  const now = await readNow(db.sql);
  const names = ["alpha", "beta", HOSTILE];
  const cache = new PastDaysCache();
  const days = await cache.read(db.sql, names, now);
  const hours = await readUptimeBuckets(db.sql, names, new Date(now.getTime() - 86_400_000), now, "hour");
  const summary = await readUptimeSummary(db.sql, names, now);
  for (const name of names) {
    assertEquals(summarizeBuckets(hours.get(name) ?? [], days.get(name) ?? [], now), summary.get(name), name);
  }
  // A second read answers past days from memory and today's from the database: the same buckets.
  assertEquals(await cache.read(db.sql, names, now), days);
});

Deno.test({
  name: "drop the database",
  sanitizeResources: false,
  fn: () => db.drop(),
});
