import { assertEquals, assertRejects } from "./_assert.ts";
import {
  abortable,
  Backoff,
  deadline,
  delay,
  exponentialBackoffWithJitter,
  isTimeout,
} from "../src/async.ts";

/** Replaces Math.random with a constant for the duration of `fn`. */
function withRandom<T>(value: number, fn: () => T): T {
  const original = Math.random;
  Math.random = () => value;
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}

Deno.test("delay() resolves after the given time", async () => {
  const start = performance.now();
  await delay(50);
  const waited = performance.now() - start;
  assertEquals(waited >= 49, true, `resolved after ${waited} ms`);
});

Deno.test("delay() rejects with the signal's reason when aborted, and clears its timer", async () => {
  const controller = new AbortController();
  const waiting = delay(10_000, { signal: controller.signal });
  controller.abort(new Error("stopping"));
  await assertRejects(() => waiting, Error, "stopping");
});

Deno.test("delay() rejects at once when the signal is already aborted", async () => {
  const reason = new RangeError("already");
  await assertRejects(() => delay(10_000, { signal: AbortSignal.abort(reason) }), RangeError, "already");
});

Deno.test("abortable() settles as the promise does while the signal is quiet", async () => {
  const controller = new AbortController();
  assertEquals(await abortable(Promise.resolve(42), controller.signal), 42);
  await assertRejects(
    () => abortable(Promise.reject(new TypeError("bad")), controller.signal),
    TypeError,
    "bad",
  );
});

Deno.test("abortable() rejects with the signal's reason when it aborts first", async () => {
  const controller = new AbortController();
  const never = new Promise<number>(() => {});
  const waiting = abortable(never, controller.signal);
  controller.abort(new Error("cancelled"));
  await assertRejects(() => waiting, Error, "cancelled");
  await assertRejects(() => abortable(never, AbortSignal.abort(new Error("before"))), Error, "before");
});

Deno.test("deadline() resolves with the value of a promise that settles in time", async () => {
  assertEquals(await deadline(Promise.resolve("done"), 1_000), "done");
  await assertRejects(() => deadline(Promise.reject(new TypeError("own")), 1_000), TypeError, "own");
});

Deno.test("deadline() rejects with a DOMException named TimeoutError when the time is up", async () => {
  const error = await assertRejects(() => deadline(delay(1_000), 20), DOMException, "Signal timed out.");
  assertEquals(error.name, "TimeoutError");
  assertEquals(isTimeout(error), true);
  assertEquals(isTimeout(new Error("Signal timed out.")), false);
  assertEquals(isTimeout(new DOMException("aborted", "AbortError")), false);
});

Deno.test("deadline() rejects with the signal's reason when the signal aborts first", async () => {
  const controller = new AbortController();
  const waiting = deadline(new Promise(() => {}), 10_000, { signal: controller.signal });
  controller.abort(new Error("shutdown"));
  await assertRejects(() => waiting, Error, "shutdown");
});

Deno.test("exponentialBackoffWithJitter() follows std's formula", () => {
  // ceiling = min(cap, base * multiplier ** attempt); delay = (1 - jitter * random) * ceiling
  assertEquals(withRandom(0, () => exponentialBackoffWithJitter(10_000, 200, 3, 2, 0.5)), 1_600);
  assertEquals(withRandom(1, () => exponentialBackoffWithJitter(10_000, 200, 3, 2, 0.5)), 800);
  assertEquals(withRandom(0.5, () => exponentialBackoffWithJitter(10_000, 200, 3, 2, 1)), 800);
  assertEquals(withRandom(0, () => exponentialBackoffWithJitter(10_000, 200, 20, 2, 0.5)), 10_000);
});

Deno.test("Backoff doubles its ceiling from minTimeout to maxTimeout, each delay in the upper half", () => {
  const backoff = new Backoff({ minTimeout: 250, maxTimeout: 10_000 });
  const highest = withRandom(0, () => Array.from({ length: 8 }, () => backoff.next()));
  assertEquals(highest, [250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  assertEquals(backoff.attempts, 8);
  backoff.reset();
  assertEquals(backoff.attempts, 0);
  const lowest = withRandom(0.999_999, () => Array.from({ length: 3 }, () => backoff.next()));
  assertEquals(lowest, [125, 250, 500]);
});

Deno.test("Backoff defaults: 200 ms to 10 s, and stays finite after many attempts", () => {
  const backoff = new Backoff();
  assertEquals(withRandom(0, () => backoff.next()), 200);
  for (let i = 0; i < 2_000; i++) backoff.next();
  assertEquals(withRandom(0, () => backoff.next()), 10_000);
});
