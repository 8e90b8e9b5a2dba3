import { assertEquals, assertThrows } from "./_assert.ts";
import { Outbox } from "../src/check/outbox.ts";

Deno.test("Outbox keeps entries in order and takes them from the front", () => {
  const outbox = new Outbox<number>(5);
  for (const n of [1, 2, 3]) outbox.push(n);
  assertEquals(outbox.take(2), [1, 2]);
  outbox.push(4);
  assertEquals(outbox.take(10), [3, 4]);
  assertEquals(outbox.size, 0);
  assertEquals(outbox.dropped, 0);
});

Deno.test("Outbox drops the oldest entries past its bound and counts them", () => {
  const outbox = new Outbox<number>(3);
  for (let n = 1; n <= 7; n++) outbox.push(n);
  assertEquals(outbox.dropped, 4);
  assertEquals(outbox.take(10), [5, 6, 7]);
});

Deno.test("Outbox.unshift() puts undelivered entries back in front, dropping the oldest that no longer fit", () => {
  const outbox = new Outbox<number>(4);
  outbox.push(1);
  outbox.push(2);
  const batch = outbox.take(2);
  outbox.push(3);
  outbox.push(4);
  outbox.push(5);
  outbox.unshift(batch);
  assertEquals(outbox.dropped, 1);
  assertEquals(outbox.take(10), [2, 3, 4, 5]);
});

Deno.test("Outbox.waitForItems() resolves on the next push", async () => {
  const outbox = new Outbox<string>(2);
  const waiting = outbox.waitForItems();
  outbox.push("x");
  await waiting;
  assertEquals(outbox.size, 1);
});

Deno.test("Outbox rejects a capacity that is not a positive integer", () => {
  assertThrows(
    () => new Outbox(0),
    RangeError,
    "Cannot create outbox as 'capacity' must be a positive integer: current value is 0",
  );
});

Deno.test("Outbox.shift() takes the front entry, and undefined when empty", () => {
  const outbox = new Outbox<string>(2);
  outbox.push("a");
  outbox.push("b");
  outbox.push("c"); // "a" dropped
  assertEquals([outbox.shift(), outbox.shift(), outbox.shift()], ["b", "c", undefined]);
  assertEquals(outbox.size, 0);
});
