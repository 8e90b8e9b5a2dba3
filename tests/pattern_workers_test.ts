import { assertEquals } from "./_assert.ts";
import { PatternWorkers } from "../src/check/pattern_workers.ts";

const encoder = new TextEncoder();

Deno.test("PatternWorkers: more matches than workers all get one in turn, with the right answers", async () => {
  const workers = new PatternWorkers(1);
  try {
    const bodies = ["systems ok", "down", "all ok here", "nope"];
    const found = await Promise.all(bodies.map((body) => workers.match(/ok/, encoder.encode(body), 10_000)));
    assertEquals(found, [{ matched: true }, { matched: false }, { matched: true }, { matched: false }]);
  } finally {
    workers.close();
  }
});

Deno.test("PatternWorkers: a waiter whose time is up passes the freed worker on to the next", async () => {
  const workers = new PatternWorkers(1);
  try {
    // The thread is busy past the first's and the second's time: the first's timeout frees the only worker
    // while the second's time is up too, and the third must then get a worker rather than wait 10 s.
    const first = workers.match(/ok/, encoder.encode("ok"), 100);
    const second = workers.match(/ok/, encoder.encode("ok"), 150);
    const third = workers.match(/ok/, encoder.encode("ok"), 10_000);
    const busyUntil = Date.now() + 400;
    while (Date.now() < busyUntil) { /* the agent's thread, busy */ }
    const started = Date.now();
    const [, secondFound, thirdFound] = await Promise.all([first, second, third]);
    assertEquals([secondFound, thirdFound], [null, { matched: true }]);
    const tookMs = Date.now() - started;
    assertEquals(tookMs < 5_000, true, `the third waited ${tookMs} ms for a free worker`);
  } finally {
    workers.close();
  }
});

Deno.test("PatternWorkers: after close() a match gets no worker", async () => {
  const workers = new PatternWorkers(1);
  workers.close();
  assertEquals(await workers.match(/ok/, encoder.encode("ok"), 1_000), null);
});
