import { assertEquals } from "./_assert.ts";
import { decodeSite, encodeSite } from "../src/db/_site_codec.ts";
import type { StoredSite } from "../src/db/state_store.ts";
import type { LocationState } from "../src/db/state.ts";
import { ERROR_KINDS } from "../src/message.ts";

/** A small random generator, seeded, so that a failure can be run again. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const TEXTS = ["", "a", "Status 503 is not in 200-399", 'quote " and \\ and \n', "été ☃ 😀", "\u0000\u001f"];

function randomSite(next: () => number): StoredSite {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
  const micros = () =>
    pick([
      0n,
      1_700_000_000_123_456n,
      -62_135_596_800_000_000n,
      253_402_300_799_999_999n,
      9_007_199_254_740_993n,
    ]);
  const time = () =>
    pick(["2023-11-14T22:13:20.000Z", "2023-11-14T22:13:20.123456Z", "1970-01-01T00:00:00Z"]);
  const counts = () => new Map(Array.from({ length: Math.floor(next() * 4) }, (_, i) => [i * 7, 1 + i]));
  const locations = new Map<number, LocationState>();
  const accumulators: StoredSite["accumulators"] = new Map();
  for (let i = Math.floor(next() * 4); i > 0; i--) {
    const locationId = Math.floor(next() * 1000);
    const up = next() < 0.5;
    const at = micros();
    const checkedAt = time();
    const turned = next() < 0.5;
    locations.set(locationId, {
      locationId,
      agentId: Math.floor(next() * 50),
      micros: at,
      checkId: crypto.randomUUID(),
      checkedAt,
      seenAtMs: Math.floor(next() * 2e12),
      since: turned ? checkedAt : time(),
      sinceMicros: turned ? at : micros(),
      consecutiveFailures: up ? 0 : Math.floor(next() * 9),
      intervalMs: 30_000,
      durationMs: pick([0, 12.5, 0.1 + 0.2, 86_400_000]),
      status: pick([null, 200, 503]),
      up,
      errorKind: up ? null : pick(ERROR_KINDS),
      errorMessage: up ? null : pick(TEXTS),
    });
    if (next() < 0.8) {
      accumulators.set(locationId, {
        hour: pick([null, 1_699_999_200_000_000n, 253_402_297_200_000_000n]),
        checks: Math.floor(next() * 500),
        upChecks: Math.floor(next() * 500),
        errors: counts(),
        latency: counts(),
      });
    }
  }
  return {
    locations,
    accumulators,
    site: next() < 0.2
      ? null
      : { state: pick(["up", "degraded", "down"]), since: time(), sinceMicros: micros() },
    open: next() < 0.5 ? null : {
      id: pick([null, 1, 9_000_000_000]),
      startedAt: time(),
      startedMicros: micros(),
      endedAt: pick([null, time()]),
      worst: pick(["degraded", "down"]),
      locationIds: [...locations.keys()].sort((a, b) => a - b),
      firstErrorKind: pick([null, ...ERROR_KINDS]),
      firstErrorMessage: pick([null, ...TEXTS]),
    },
  };
}

Deno.test("encodeSite: decodeSite gives back exactly the rows, in maps of their own, for any rows", () => {
  const next = random(20261201);
  for (let i = 0; i < 2_000; i++) {
    const rows = randomSite(next);
    const decoded = decodeSite(encodeSite(rows));
    assertEquals(decoded, rows, `case ${i}`);
    assertEquals(decoded.locations === rows.locations, false);
  }
});

Deno.test("encodeSite: a site with three locations fits in under 1,000 characters", () => {
  const next = random(7);
  let site: StoredSite;
  do site = randomSite(next); while (site.locations.size !== 3);
  // Three locations with their counts: the figure in src/db/state_cache.ts.
  assertEquals(encodeSite(site).length < 1_000, true, encodeSite(site));
});
