import { assertEquals } from "./_assert.ts";
import { missingPartitions, unacknowledged } from "../src/check/acknowledged.ts";

const ack = (partition: number, errorCode = 0, topicName = "checks") => ({ topicName, partition, errorCode });

Deno.test("unacknowledged() returns nothing when every partition of the batch is in the metadata", () => {
  const partitions = [0, 1, 2, 1, 0];
  assertEquals(
    unacknowledged(["a", "b", "c", "d", "e"], (i) => partitions[i], [ack(2), ack(0), ack(1)], "checks"),
    [],
  );
});

Deno.test("unacknowledged() returns the messages of a partition missing from the metadata, in order", () => {
  // What kafkajs 2.2.4 returns after partition 1's leader moved to a broker that had already answered.
  const partitions = [0, 1, 2, 1, 0, 1];
  const entries = ["a", "b", "c", "d", "e", "f"];
  assertEquals(unacknowledged(entries, (i) => partitions[i], [ack(0), ack(2)], "checks"), ["b", "d", "f"]);
  assertEquals(missingPartitions(partitions, [ack(0), ack(2)], "checks"), [1]);
});

Deno.test("unacknowledged() counts an error code, another topic or no partition as not acknowledged", () => {
  const partitions = [0, 1, 2, undefined];
  const metadata = [ack(0, 6), ack(1, 0, "other"), ack(2)];
  assertEquals(unacknowledged(["a", "b", "c", "d"], (i) => partitions[i], metadata, "checks"), [
    "a",
    "b",
    "d",
  ]);
  assertEquals(missingPartitions(partitions, metadata, "checks"), [0, 1]);
});

Deno.test("unacknowledged() returns the whole batch for empty metadata", () => {
  assertEquals(unacknowledged(["a", "b"], () => 3, [], "checks"), ["a", "b"]);
  assertEquals(missingPartitions([3, 3], [], "checks"), [3]);
});
