import { assertEquals, assertThrows } from "./_assert.ts";
import { Deadlines } from "../src/check/deadlines.ts";
import { delay } from "../src/async.ts";

Deno.test("Deadlines aborts a deadline left running with a TimeoutError naming its length", async () => {
  const deadlines = new Deadlines();
  const deadline = deadlines.start(20);
  assertEquals(deadline.signal.aborted, false);
  await delay(120);
  assertEquals(deadline.signal.aborted, true);
  const reason = deadline.signal.reason as DOMException;
  assertEquals(reason.name, "TimeoutError");
  assertEquals(reason.message, "Timed out after 20 ms");
  assertEquals(deadlines.live, 0);
  deadline.cancel(); // too late: nothing happens
  assertEquals(deadlines.live, 0);
});

Deno.test("Deadlines never aborts a cancelled deadline, and holds no timer once none is live", async () => {
  const deadlines = new Deadlines();
  const cancelled = Array.from({ length: 100 }, () => deadlines.start(30));
  for (const deadline of cancelled) deadline.cancel();
  assertEquals(deadlines.live, 0);
  // The test's sanitizer fails it if a timer is left pending; the wait shows nothing fires either.
  await delay(80);
  assertEquals(cancelled.some((deadline) => deadline.signal.aborted), false);
});

Deno.test("Deadlines aborts only the deadlines not cancelled, each length on its own time", async () => {
  const deadlines = new Deadlines();
  const aborted: string[] = [];
  const start = (name: string, ms: number) => {
    const deadline = deadlines.start(ms);
    deadline.signal.addEventListener("abort", () => aborted.push(name));
    return deadline;
  };
  const long = start("long", 5_000);
  const first = start("first", 40);
  start("cancelled", 40).cancel();
  const second = start("second", 40);
  const short = start("short", 10);
  await delay(150);
  // Deadlines of one length expire in the order they started. Across lengths the order follows the timer: on
  // a loaded machine it may fire once for all three (seen in CI: "first", "second", "short").
  assertEquals([...aborted].sort(), ["first", "second", "short"]);
  assertEquals(aborted.indexOf("first") < aborted.indexOf("second"), true, aborted.join(","));
  assertEquals([first, second, short].every((deadline) => deadline.signal.aborted), true);
  assertEquals(long.signal.aborted, false);
  assertEquals(deadlines.live, 1);
  long.cancel();
  assertEquals(deadlines.live, 0);
});

Deno.test("Deadlines keeps working when an abort listener starts and cancels deadlines", async () => {
  const deadlines = new Deadlines();
  const outer = deadlines.start(10);
  let inner: ReturnType<Deadlines["start"]> | null = null;
  outer.signal.addEventListener("abort", () => {
    deadlines.start(10_000).cancel();
    inner = deadlines.start(10);
  });
  await delay(150);
  assertEquals(outer.signal.aborted, true);
  assertEquals(inner !== null && (inner as { signal: AbortSignal }).signal.aborted, true);
  assertEquals(deadlines.live, 0);
});

Deno.test("Deadlines rejects a negative or infinite length", () => {
  const deadlines = new Deadlines();
  assertThrows(
    () => deadlines.start(-1),
    RangeError,
    "Cannot start a deadline as 'timeoutMs' must be a finite number >= 0: current value is -1",
  );
  assertThrows(() => deadlines.start(Infinity), RangeError);
});

Deno.test("Deadlines ends the live deadlines started with a signal when it aborts, with its reason", async () => {
  const deadlines = new Deadlines();
  const stopping = new AbortController();
  const other = new AbortController();
  const ended = [deadlines.start(5_000, stopping.signal), deadlines.start(60, stopping.signal)];
  const done = deadlines.start(5_000, stopping.signal);
  done.cancel();
  const unrelated = deadlines.start(5_000, other.signal);
  const plain = deadlines.start(5_000);
  const reason = new Error("the agent is stopping");
  stopping.abort(reason);
  assertEquals(ended.map((deadline) => deadline.signal.reason), [reason, reason]);
  assertEquals(ended.map((deadline) => deadline.timedOut), [false, false]);
  assertEquals([done, unrelated, plain].map((deadline) => deadline.signal.aborted), [false, false, false]);
  assertEquals(deadlines.live, 2);
  // Started after its signal aborted: ended at once.
  const late = deadlines.start(5_000, stopping.signal);
  assertEquals([late.signal.reason, late.timedOut, deadlines.live], [reason, false, 2]);
  unrelated.cancel();
  plain.cancel();
  assertEquals(deadlines.live, 0);
  await delay(100); // the 60 ms deadline, already ended, does not fire again
  assertEquals(ended[1]!.timedOut, false);
});

Deno.test("Deadlines says a deadline timed out only when its time was up", async () => {
  const deadlines = new Deadlines();
  const stopping = new AbortController();
  const deadline = deadlines.start(10, stopping.signal);
  await delay(80);
  assertEquals([deadline.signal.aborted, deadline.timedOut], [true, true]);
  stopping.abort();
  assertEquals((deadline.signal.reason as DOMException).name, "TimeoutError");
  assertEquals(deadlines.live, 0);
});
