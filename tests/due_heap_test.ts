import { assertEquals, assertThrows } from "./_assert.ts";
import { DueHeap } from "../src/check/_due_heap.ts";

/** Drains the heap, returning the (due, id) pairs in the order they come off the top. */
function drain(heap: DueHeap): [number, number][] {
  const out: [number, number][] = [];
  while (heap.size > 0) {
    out.push([heap.topDue, heap.topId]);
    heap.pop();
  }
  return out;
}

Deno.test("DueHeap gives the earliest due time first, with its id", () => {
  const heap = new DueHeap(5);
  for (const [due, id] of [[50, 0], [10, 1], [40, 2], [20, 3], [30, 4]] as const) heap.push(due, id);
  assertEquals(drain(heap), [[10, 1], [20, 3], [30, 4], [40, 2], [50, 0]]);
  assertEquals(heap.topDue, Infinity);
  assertEquals(heap.topId, -1);
});

Deno.test("DueHeap.replaceTop() takes the top off and adds the new pair in one step", () => {
  const heap = new DueHeap(3);
  heap.push(30, 0);
  heap.push(10, 1);
  heap.push(20, 2);
  heap.replaceTop(40, 1);
  assertEquals([heap.topDue, heap.topId], [20, 2]);
  heap.replaceTop(5, 2);
  assertEquals([heap.topDue, heap.topId], [5, 2]);
  assertEquals(drain(heap), [[5, 2], [30, 0], [40, 1]]);
});

Deno.test("DueHeap keeps heap order through many replaceTop() calls, as the scheduler uses it", () => {
  // A fixed pseudo-random sequence, so the test is the same on every run.
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const count = 1000;
  const heap = new DueHeap(count);
  const due = new Float64Array(count);
  for (let id = 0; id < count; id++) heap.push(due[id] = Math.floor(random() * 10_000), id);
  for (let step = 0; step < 5_000; step++) {
    const id = heap.topId;
    // The top is the minimum of every current due time.
    assertEquals(heap.topDue, Math.min(...due));
    assertEquals(due[id], heap.topDue);
    due[id] = heap.topDue + 1 + Math.floor(random() * 10_000);
    heap.replaceTop(due[id]!, id);
  }
  const drained = drain(heap);
  assertEquals(drained.length, count);
  for (let i = 1; i < drained.length; i++) assertEquals(drained[i - 1]![0] <= drained[i]![0], true);
  assertEquals(new Set(drained.map(([, id]) => id)).size, count);
});

Deno.test("DueHeap rejects a push past its capacity and a bad capacity", () => {
  const heap = new DueHeap(1);
  heap.push(1, 0);
  assertThrows(() => heap.push(2, 1), RangeError, "Cannot push onto the due heap: it is full at 1 entries");
  assertThrows(
    () => new DueHeap(-1),
    RangeError,
    "Cannot create due heap as 'capacity' must be a non-negative integer: current value is -1",
  );
});
