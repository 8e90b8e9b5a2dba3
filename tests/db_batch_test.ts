import { assertEquals, assertThrows } from "./_assert.ts";
import { type Batch, validateBatch } from "../src/db/batch.ts";
import { makeCheck } from "./_checks.ts";

const at = new Date("2026-11-30T10:00:00Z");

const letter = (partition: number, offset: string) => ({
  partition,
  offset,
  key: null,
  value: new Uint8Array([1]),
  error: "Cannot decode check: the value is not JSON",
});

const batch: Batch = {
  group: "g",
  topic: "monitor.checks",
  checks: [
    { partition: 0, offset: "41", check: makeCheck("a", at) },
    { partition: 3, offset: "9", check: makeCheck("b", at) },
  ],
  deadLetters: [letter(0, "42")],
  progress: [
    { partition: 0, firstOffset: "41", nextOffset: "45", fetchedFrom: "40" },
    { partition: 3, firstOffset: "9", nextOffset: "10" },
  ],
};

Deno.test("validateBatch() returns each partition's range and each message's offset as numbers", () => {
  const { ranges, checkOffsets, letterOffsets } = validateBatch(batch);
  assertEquals(
    ranges,
    new Map([[0, { first: 41n, next: 45n, fetched: 40n }], [3, { first: 9n, next: 10n, fetched: null }]]),
  );
  assertEquals(checkOffsets, [41n, 9n]);
  assertEquals(letterOffsets, [42n]);
});

Deno.test("validateBatch() names what is wrong with a malformed batch", () => {
  const cases: [Partial<Batch>, ErrorConstructor, string][] = [
    [{ topic: "" }, TypeError, "Cannot write batch as 'topic' must not be empty"],
    [
      { progress: [...batch.progress, { partition: 3, firstOffset: "9", nextOffset: "10" }] },
      RangeError,
      "Cannot write batch as partition 3 has two progress entries",
    ],
    [
      { progress: [{ partition: -1, firstOffset: "0", nextOffset: "0" }] },
      RangeError,
      "Cannot write batch as a partition must be a non-negative integer: got -1",
    ],
    [
      { progress: [{ partition: 0, firstOffset: "041", nextOffset: "45" }] },
      TypeError,
      "Cannot write batch as 'firstOffset' must be a decimal offset: got '041'",
    ],
    [
      { progress: [{ partition: 0, firstOffset: "0", nextOffset: "9223372036854775808" }] },
      TypeError,
      "Cannot write batch as 'nextOffset' must be a decimal offset: got '9223372036854775808'",
    ],
    [
      { progress: [{ partition: 0, firstOffset: "41", nextOffset: "45", fetchedFrom: "42" }] },
      RangeError,
      "Cannot write batch as partition 0 has fetchedFrom '42' after firstOffset '41'",
    ],
    [
      { deadLetters: [letter(3, "10")] },
      RangeError,
      "Cannot write batch as a dead letter at partition 3 offset '10' is outside the batch's range for that " +
      "partition: 9 to 9",
    ],
  ];
  for (const [change, ErrorClass, message] of cases) {
    assertThrows(() => validateBatch({ ...batch, ...change }), ErrorClass, message);
  }
});
