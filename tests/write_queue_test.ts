import { assertEquals, assertThrows } from "./_assert.ts";
import { WriteQueue } from "../src/sink/write_queue.ts";

interface Item {
  readonly partition: number;
  readonly size: number;
  readonly seq: number;
}

/** A queue whose writes finish only when the test says so; `written` lists each write's items. */
function harness(options: { maxBatch: number; maxHeld: number; writers: number; gapAfter?: number }) {
  const written: string[] = [];
  const finishers: (() => void)[] = [];
  const queue = new WriteQueue<Item>({
    ...options,
    write: (items) => {
      written.push(items.map((item) => `${item.partition}:${item.seq}`).join(" "));
      return new Promise<void>((resolve) => finishers.push(resolve));
    },
    // Item `gapAfter` does not follow the one before it (it was fetched after a hole).
    follows: (_previous, next) => next.seq !== options.gapAfter,
  });
  let seq = 0;
  const push = (partition: number, size = 1) => queue.push({ partition, size, seq: seq++ });
  const finish = async (index: number) => {
    finishers[index]!();
    await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { queue, written, push, finish };
}

Deno.test("WriteQueue: one write per partition at a time, the partition's queued batches taken together", async () => {
  const { queue, written, push, finish } = harness({ maxBatch: 10, maxHeld: 100, writers: 2 });
  push(0); // 0 starts at once
  push(0);
  push(1); // 1 starts at once: the second writer
  push(0);
  push(2); // both writers busy
  push(1);
  assertEquals(written, ["0:0", "1:2"]);
  assertEquals([queue.queued, queue.held], [4, 6]);
  await finish(0); // partition 0's writer is free: the oldest waiting batch is 0's, taken with the next 0
  assertEquals(written, ["0:0", "1:2", "0:1 0:3"]);
  await finish(1); // then 2, which waited longer than 1's second batch
  assertEquals(written.at(-1), "2:4");
  await finish(2);
  assertEquals(written.at(-1), "1:5");
  await finish(3);
  await finish(4);
  assertEquals([queue.queued, queue.held], [0, 0]);
});

Deno.test("WriteQueue: a transaction stops at maxBatch checks and at a batch that does not follow", async () => {
  const { written, push, finish } = harness({ maxBatch: 5, maxHeld: 100, writers: 1, gapAfter: 4 });
  push(0, 1); // written alone at once
  push(0, 2);
  push(0, 2);
  push(0, 2); // over maxBatch with the two before it
  push(0, 1); // seq 4 does not follow seq 3
  push(0, 9); // larger than maxBatch: taken alone
  await finish(0);
  await finish(1);
  await finish(2);
  await finish(3);
  assertEquals(written, ["0:0", "0:1 0:2", "0:3", "0:4", "0:5"]);
});

Deno.test("WriteQueue: room is bounded by what is held; drop() frees the waiting batches of a partition", async () => {
  const { queue, written, push, finish } = harness({ maxBatch: 10, maxHeld: 4, writers: 1 });
  push(0, 2);
  push(1, 1);
  assertEquals(queue.hasRoom(), true);
  push(0, 1);
  assertEquals([queue.hasRoom(), queue.held], [false, 4]);
  let woken = false;
  const waiting = queue.changed(60_000).then(() => woken = true);
  assertEquals(queue.drop((batch) => batch.partition === 0), 1); // the one waiting; the one being written stays
  await waiting;
  assertEquals([woken, queue.held, queue.hasRoom()], [true, 3, true]);
  assertEquals(queue.drop(() => true), 1);
  assertEquals([queue.queued, queue.held], [0, 2]);
  await finish(0);
  assertEquals([written, queue.held], [["0:0"], 0]);
  await queue.settled(1_000);
});

Deno.test("WriteQueue: a wait that times out leaves nothing behind to wake", async () => {
  const { queue, push, finish } = harness({ maxBatch: 10, maxHeld: 1, writers: 1 });
  push(0);
  for (let i = 0; i < 3; i++) await queue.changed(1);
  assertEquals(queue.waiting, 0);
  let woken = false;
  const waiting = queue.changed(60_000).then(() => woken = true);
  assertEquals(queue.waiting, 1);
  await finish(0);
  await waiting;
  assertEquals([woken, queue.waiting], [true, 0]);
});

Deno.test("WriteQueue: refuses sizes that are not positive integers", () => {
  const write = () => Promise.resolve();
  const follows = () => true;
  assertThrows(
    () => new WriteQueue({ maxBatch: 0, maxHeld: 1, writers: 1, write, follows }),
    RangeError,
    "Cannot create write queue as 'maxBatch' must be a positive integer: got 0",
  );
});
