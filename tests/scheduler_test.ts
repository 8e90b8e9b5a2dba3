import { assertEquals } from "./_assert.ts";
import { firstDue, nextDue, phaseOffset, Scheduler } from "../src/check/scheduler.ts";
import { delay } from "../src/async.ts";

Deno.test("phaseOffset() is the 32-bit FNV-1a hash of the name modulo the interval", () => {
  // Pinned: agents of different versions must keep putting a site on the same slot.
  assertEquals(phaseOffset("api", 60_000), 946_514_567 % 60_000);
  assertEquals(phaseOffset("api", 60_000), 14_567);
  assertEquals(phaseOffset("a", 50), 20);
  assertEquals(phaseOffset("", 1000), 261);
  assertEquals(phaseOffset("site-1", 10_000), 5_992);
});

Deno.test("phaseOffset() is within the interval and differs between names", () => {
  const offsets = ["a", "b", "c", "d", "e", "f", "g", "h"].map((name) => phaseOffset(name, 10_000));
  for (const offset of offsets) assertEquals(offset >= 0 && offset < 10_000, true);
  assertEquals(new Set(offsets).size, offsets.length);
});

Deno.test("phaseOffset() spreads 30,000 sites evenly over their interval", () => {
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 30_000; i++) buckets[Math.floor(phaseOffset(`site-${i}`, 10_000) / 1000)]++;
  for (const count of buckets) assertEquals(count > 2_700 && count < 3_300, true, `uneven: ${buckets}`);
});

Deno.test("firstDue() returns the next slot of the site's grid at or after now", () => {
  assertEquals(firstDue(1_000_500, 1000, 200), 1_001_200);
  assertEquals(firstDue(1_000_200, 1000, 200), 1_000_200);
  assertEquals(firstDue(1_000_100, 1000, 200), 1_000_200);
});

Deno.test("nextDue() is fixed-rate and skips whole missed intervals instead of bursting", () => {
  assertEquals(nextDue(10_000, 1000, 10_050), { next: 11_000, missed: 0 });
  // A run that started late does not push the grid back.
  assertEquals(nextDue(10_000, 1000, 10_900), { next: 11_000, missed: 0 });
  assertEquals(nextDue(10_000, 1000, 14_500), { next: 14_000, missed: 3 });
});

Deno.test("Scheduler runs each site on its interval without drift", async () => {
  const runs: { name: string; due: number }[] = [];
  const sites = [{ name: "a", intervalMs: 50 }, { name: "b", intervalMs: 100 }];
  const scheduler = new Scheduler(sites, (s) => s.intervalMs, (s) => s.name, (site, due) => {
    runs.push({ name: site.name, due });
    return Promise.resolve();
  }, { concurrency: 10 });
  scheduler.start();
  await delay(520);
  await scheduler.stop();
  const dues = (name: string) => runs.filter((r) => r.name === name).map((r) => r.due);
  const a = dues("a");
  const b = dues("b");
  assertEquals(a.length >= 9 && a.length <= 11, true, `site a ran ${a.length} times`);
  assertEquals(b.length >= 4 && b.length <= 6, true, `site b ran ${b.length} times`);
  for (let i = 1; i < a.length; i++) assertEquals(a[i]! - a[i - 1]!, 50);
  for (let i = 1; i < b.length; i++) assertEquals(b[i]! - b[i - 1]!, 100);
  assertEquals(a[0]! % 50, 20); // phaseOffset("a", 50)
});

Deno.test("Scheduler does not start a site twice while its previous run is going, and counts the skip", async () => {
  let concurrent = 0;
  let maxConcurrent = 0;
  const scheduler = new Scheduler([{ name: "slow" }], () => 20, (s) => s.name, async () => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    await delay(70);
    concurrent--;
  }, { concurrency: 5 });
  scheduler.start();
  await delay(300);
  await scheduler.stop();
  const stats = scheduler.takeStats();
  assertEquals(maxConcurrent, 1);
  assertEquals(stats.skipped >= 8, true, `skipped ${stats.skipped}`);
  assertEquals(stats.started >= 3 && stats.started <= 5, true, `started ${stats.started}`);
});

Deno.test("Scheduler never runs more than the concurrency limit at once, and queues the rest", async () => {
  let clock = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  let runs = 0;
  const sites = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}` }));
  const scheduler = new Scheduler(sites, () => 1000, (s) => s.name, async () => {
    runs++;
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    await delay(20);
    concurrent--;
  }, { concurrency: 3, now: () => clock });
  clock = 1000; // every site's first slot (within [0, 1000)) is now due at once
  scheduler.start();
  await delay(300);
  await scheduler.stop();
  assertEquals(maxConcurrent, 3);
  assertEquals(runs, 20);
});

Deno.test("Scheduler.stop() waits for runs in flight", async () => {
  let clock = 0;
  let finished = false;
  const scheduler = new Scheduler([{ name: "x" }], () => 1000, (s) => s.name, async () => {
    await delay(50);
    finished = true;
  }, { concurrency: 1, now: () => clock });
  clock = 1000;
  scheduler.start();
  await delay(10);
  assertEquals(scheduler.inFlight, 1);
  await scheduler.stop();
  assertEquals(finished, true);
  assertEquals(scheduler.inFlight, 0);
});

Deno.test("Scheduler starts a run that came due while the site was running as soon as that run ends", async () => {
  // Runs a little longer than the interval (a site that times out with timeout = interval): each slot that
  // comes during a run starts right after it, where skipping them would run every other slot (skipped about
  // equal to started). Timers late by up to half an interval on a busy machine keep that far from the bound.
  const scheduler = new Scheduler([{ name: "timing-out" }], () => 200, (s) => s.name, () => delay(210), {
    concurrency: 5,
  });
  scheduler.start();
  await delay(2_500);
  await scheduler.stop();
  const { started, skipped } = scheduler.takeStats();
  assertEquals(started >= 8, true, `started ${started}`);
  assertEquals(skipped <= started * 0.6, true, `skipped ${skipped} of ${started + skipped} slots`);
});
