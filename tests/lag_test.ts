import { assertEquals, assertThrows } from "./_assert.ts";
import { LagTracker } from "../src/sink/lag.ts";

const mark = (partition: number, high: bigint, low = 0n) => ({ partition, high, low });

Deno.test("LagTracker: lag is the high watermark minus the stored next offset, per partition and summed", () => {
  const tracker = new LagTracker(30_000);
  tracker.assign([2, 0, 1], 0);
  tracker.stored(0, 120n, 0);
  tracker.stored(1, 50n, 0);
  tracker.watermarks([mark(0, 150n), mark(1, 50n), mark(2, 40n, 10n), mark(3, 99n)], 1_000);
  assertEquals([...tracker.lag()], [[0, 30], [1, 0], [2, 30]]);
  assertEquals(tracker.totalLag(), 60);
  assertEquals(tracker.assigned, [0, 1, 2]);
});

Deno.test("LagTracker: lag is 0 until the high watermark is known, and never negative", () => {
  const tracker = new LagTracker(30_000);
  tracker.assign([0, 1], 0);
  tracker.stored(1, 70n, 0);
  assertEquals([...tracker.lag()], [[0, 0], [1, 0]]);
  tracker.watermarks([mark(1, 60n)], 0);
  assertEquals(tracker.lag().get(1), 0);
});

Deno.test("LagTracker: a partition with lag and nothing stored for the stall timeout is stalled", () => {
  const tracker = new LagTracker(30_000);
  tracker.assign([0, 1], 0);
  tracker.stored(0, 100n, 0);
  tracker.stored(1, 100n, 0);
  tracker.watermarks([mark(0, 100n), mark(1, 100n)], 5_000); // no lag: the clocks restart
  tracker.watermarks([mark(0, 180n), mark(1, 130n)], 10_000); // lag appears
  tracker.stored(1, 130n, 20_000); // partition 1 catches up
  assertEquals(tracker.stalls(34_999), []);
  assertEquals(tracker.stalls(35_000), [{ partition: 0, lag: 80, forMs: 30_000 }]);
  assertEquals(tracker.healthReason(35_000), "stalled: nothing stored for 30s on partition 0 (lag 80)");
  tracker.stored(0, 150n, 36_000);
  assertEquals(tracker.stalls(36_000), []);
  assertEquals(tracker.healthReason(36_000), null);
});

Deno.test("LagTracker: storing an offset that is not higher is not progress", () => {
  const tracker = new LagTracker(10_000);
  tracker.assign([0], 0);
  tracker.stored(0, 50n, 0);
  tracker.watermarks([mark(0, 90n)], 0);
  tracker.stored(0, 50n, 9_000); // the same offset read again at a rejoin
  tracker.stored(0, 40n, 9_500); // an older batch of an abandoned consumer
  assertEquals(tracker.stalls(10_000), [{ partition: 0, lag: 40, forMs: 10_000 }]);
});

Deno.test("LagTracker: a rejoin that gets the same partition back keeps its clock; a new partition starts one", () => {
  const tracker = new LagTracker(10_000);
  tracker.assign([0], 0);
  tracker.stored(0, 5n, 0);
  tracker.watermarks([mark(0, 25n)], 0);
  tracker.assign([0, 1], 8_000);
  tracker.watermarks([mark(0, 25n), mark(1, 7n)], 8_000);
  assertEquals(tracker.stalls(12_000), [{ partition: 0, lag: 20, forMs: 12_000 }]);
  assertEquals(tracker.stalls(18_000).map((stall) => stall.partition), [0, 1]);
  tracker.assign([1], 18_000);
  assertEquals([...tracker.lag()], [[1, 7]]);
});

Deno.test("LagTracker: a recovery is due at most once per stall timeout while the stall lasts", () => {
  const tracker = new LagTracker(10_000);
  tracker.assign([0], 0);
  tracker.watermarks([mark(0, 3n)], 0);
  assertEquals(tracker.recoveryDue(9_999), []);
  assertEquals(tracker.recoveryDue(10_000), [{ partition: 0, lag: 3, forMs: 10_000 }]);
  assertEquals(tracker.recoveryDue(15_000), []);
  assertEquals(tracker.recoveryDue(20_000).length, 1);
});

Deno.test("LagTracker: pause() restarts every clock (the database, not Kafka, holds the sink up)", () => {
  const tracker = new LagTracker(10_000);
  tracker.assign([0], 0);
  tracker.watermarks([mark(0, 3n)], 0);
  tracker.pause(9_000);
  assertEquals(tracker.stalls(18_999), []);
  assertEquals(tracker.stalls(19_000).length, 1);
});

Deno.test("LagTracker rejects a stall timeout that is not positive", () => {
  assertThrows(
    () => new LagTracker(0),
    RangeError,
    "Cannot track stalls as 'stallTimeoutMs' must be a positive number: current value is 0",
  );
});

Deno.test("LagTracker: offsets passed over with nothing to store (a trailing transaction marker) count once reached", () => {
  const tracker = new LagTracker(30_000);
  tracker.assign([0, 1], 0);
  tracker.stored(0, 5n, 0);
  tracker.watermarks([mark(0, 6n), mark(1, 9n)], 0);
  // Reached already: the marker at 5 counts as stored at once, which is progress.
  assertEquals(tracker.passedOver(0, 5n, 6n, 1_000), 6n);
  assertEquals(tracker.lag().get(0), 0);
  // A batch fetched from 6 may vouch from 5, where the database's stored offset still is.
  assertEquals([tracker.emptyBefore(0, 6n), tracker.emptyBefore(0, 7n)], [5n, null]);
  // Not reached yet (a write below it is under way): counted when the stored offset gets there.
  tracker.stored(1, 3n, 0);
  assertEquals(tracker.passedOver(1, 7n, 8n, 1_000), null);
  assertEquals(tracker.passedOver(1, 8n, 9n, 1_000), null); // joins the range before it
  assertEquals(tracker.lag().get(1), 6);
  tracker.stored(1, 7n, 2_000);
  assertEquals(tracker.lag().get(1), 0);
  assertEquals(tracker.stalls(60_000), []);
  // Offsets already stored past are no news.
  assertEquals(tracker.passedOver(1, 2n, 4n, 3_000), null);
  assertEquals(tracker.lag().get(1), 0);
});
