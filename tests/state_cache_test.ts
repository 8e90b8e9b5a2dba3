import { assertEquals } from "./_assert.ts";
import { StateCache } from "../src/db/state_cache.ts";
import type { StoredSite } from "../src/db/state_store.ts";
import type { LocationState } from "../src/db/state.ts";

/** A site's rows, told apart by the state's `since`. */
function site(since: string): StoredSite {
  return {
    locations: new Map(),
    accumulators: new Map(),
    site: { state: "up", since, sinceMicros: 0n },
    open: null,
  };
}

const sinceOf = (held: Map<number, StoredSite>) =>
  new Map([...held].map(([id, rows]) => [id, rows.site?.since]));

Deno.test("StateCache: a batch takes its sites out and puts back what it committed", () => {
  const cache = new StateCache();
  cache.put(cache.generation, new Map([[1, site("a")], [2, site("b")]]));
  const first = cache.take([1, 3]);
  assertEquals(sinceOf(first.held), new Map([[1, "a"]]));
  assertEquals(first.missing, [3]);
  cache.put(cache.generation, new Map([[1, site("a2")], [3, site("c")]]));
  cache.release([1, 3]);
  const next = cache.take([1, 2, 3]);
  assertEquals(sinceOf(next.held), new Map([[1, "a2"], [2, "b"], [3, "c"]]));
  assertEquals(next.missing, []);
  // This batch fails: it puts nothing back, and the next one reads its sites from the database.
  cache.release([1, 2, 3]);
  assertEquals(cache.take([1, 2, 3]).missing, [1, 2, 3]);
});

Deno.test("StateCache: a batch begun before a clear puts nothing back", () => {
  const cache = new StateCache();
  const begun = cache.generation;
  cache.take([1]);
  cache.clear();
  cache.put(begun, new Map([[1, site("old")]]));
  cache.release([1]);
  assertEquals(cache.size, 0);
  cache.put(cache.generation, new Map([[1, site("new")]]));
  assertEquals(sinceOf(cache.take([1]).held), new Map([[1, "new"]]));
});

Deno.test("StateCache: a site two batches hold at once is put back by neither, until both end", () => {
  const cache = new StateCache();
  cache.put(cache.generation, new Map([[1, site("a")]]));
  assertEquals(cache.take([1]).held.size, 1);
  assertEquals(cache.take([1]).missing, [1]); // the second batch reads it from the database
  cache.put(cache.generation, new Map([[1, site("first")]]));
  cache.release([1]);
  cache.put(cache.generation, new Map([[1, site("second")]]));
  cache.release([1]);
  assertEquals(cache.size, 0);
  // Both ended: the next batch's rows are kept again.
  cache.take([1]);
  cache.put(cache.generation, new Map([[1, site("third")]]));
  cache.release([1]);
  assertEquals(sinceOf(cache.take([1]).held), new Map([[1, "third"]]));
});

Deno.test("StateCache: holds at most maxBytes of text, counting what it gives back and replaces", () => {
  const one = new StateCache();
  one.put(one.generation, new Map([[1, site("a")]]));
  const perSite = one.bytes;
  assertEquals(perSite > 48, true);
  // Room for two sites: the third is not kept, and is read from the database.
  const cache = new StateCache(2 * perSite);
  cache.put(cache.generation, new Map([[1, site("a")], [2, site("b")], [3, site("c")]]));
  assertEquals([cache.size, cache.bytes], [2, 2 * perSite]);
  assertEquals(cache.take([1, 2, 3]).missing, [3]);
  assertEquals([cache.size, cache.bytes], [0, 0]);
  cache.release([1, 2, 3]);
  cache.put(cache.generation, new Map([[3, site("c")]]));
  cache.put(cache.generation, new Map([[3, site("d")]]));
  assertEquals([cache.size, cache.bytes], [1, perSite]);
  // A site that does not fit is not kept, and its older text is dropped.
  cache.put(cache.generation, new Map([[3, site("c".repeat(2 * perSite))]]));
  assertEquals([cache.size, cache.bytes], [0, 0]);
  cache.clear();
  assertEquals([cache.size, cache.bytes], [0, 0]);
  // Text that needs two bytes a character is counted so: four characters more than "a", two bytes each.
  const roomy = new StateCache();
  roomy.put(roomy.generation, new Map([[4, site("\u00e9t\u00e9 \u2603")]]));
  assertEquals(roomy.bytes, 2 * (perSite - 48 + 4) + 48);
});

Deno.test("StateCache: gives back every row it was given, in maps of their own", () => {
  const location = (locationId: number, up: boolean): LocationState => ({
    locationId,
    agentId: locationId + 10,
    micros: 1_700_000_000_000_000n,
    checkId: `0190f0a0-0000-7000-8000-00000000000${locationId}`,
    checkedAt: "2023-11-14T22:13:20.000000Z",
    seenAtMs: 1_700_000_000_000,
    since: "2023-11-14T22:00:00.000000Z",
    sinceMicros: 1_699_999_200_000_000n,
    consecutiveFailures: up ? 0 : 3,
    intervalMs: 30_000,
    durationMs: 12.5,
    status: up ? 200 : 503,
    up,
    errorKind: up ? null : "http",
    errorMessage: up ? null : "Status 503 is not in 200-399",
  });
  const rows: StoredSite = {
    locations: new Map([[4, location(4, true)], [7, location(7, false)]]),
    accumulators: new Map([
      [4, {
        hour: 1_699_999_200_000_000n,
        checks: 12,
        upChecks: 12,
        errors: new Map(),
        latency: new Map([[40, 9], [41, 3]]),
      }],
      [7, {
        hour: 1_699_999_200_000_000n,
        checks: 12,
        upChecks: 0,
        errors: new Map([[5, 12]]),
        latency: new Map(),
      }],
    ]),
    site: { state: "degraded", since: "2023-11-14T22:00:00.000000Z", sinceMicros: 1_699_999_200_000_000n },
    open: null,
  };
  const cache = new StateCache();
  cache.put(cache.generation, new Map([[1, rows]]));
  const taken = cache.take([1]).held.get(1)!;
  assertEquals(taken, rows);
  (taken.accumulators.get(4)!.latency as Map<number, number>).set(40, 10);
  cache.put(cache.generation, new Map([[1, taken]]));
  cache.release([1]);
  assertEquals(cache.take([1]).held.get(1)!.accumulators.get(4)!.latency, new Map([[40, 10], [41, 3]]));
  assertEquals(rows.accumulators.get(4)!.latency, new Map([[40, 9], [41, 3]]));
});
