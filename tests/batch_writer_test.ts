import { Buffer } from "node:buffer";
import { assertEquals } from "./_assert.ts";
import { makeCheck } from "./_checks.ts";
import { encodeCheck } from "../src/message.ts";
import { decodeBatch, mergeBatches } from "../src/sink/batch_writer.ts";

Deno.test("decodeBatch() keeps decodable checks, makes dead letters of the rest, and records the next offset", () => {
  const check = makeCheck("alpha", new Date("2026-01-02T03:04:05.000Z"));
  const poison = Buffer.from("not json");
  const batch = decodeBatch("monitor-sink", {
    topic: "monitor.checks",
    partition: 4,
    messages: [
      { offset: "41", key: Buffer.from("alpha"), value: Buffer.from(encodeCheck(check)) },
      { offset: "42", key: null, value: poison },
    ],
  });
  assertEquals(batch.group, "monitor-sink");
  assertEquals(batch.topic, "monitor.checks");
  assertEquals(batch.checks, [{ partition: 4, offset: "41", check }]);
  assertEquals(batch.deadLetters.length, 1);
  const dead = batch.deadLetters[0]!;
  assertEquals(dead.partition, 4);
  assertEquals(dead.offset, "42");
  assertEquals(dead.key, null);
  assertEquals(dead.value, new Uint8Array(poison));
  assertEquals(
    dead.error,
    `Cannot decode check: the value is not JSON: Unexpected token 'o', "not json" is not valid JSON`,
  );
  assertEquals(batch.progress, [{ partition: 4, firstOffset: "41", nextOffset: "43" }]);
});

Deno.test("decodeBatch() with fetchedFrom vouches for the range; mergeBatches() joins consecutive batches", () => {
  const at = (offset: number) => ({
    offset: String(offset),
    key: null,
    value: Buffer.from(encodeCheck(makeCheck("alpha", new Date(Date.UTC(2026, 0, 2, 3, 4, offset))))),
  });
  const first = decodeBatch("g", { topic: "t", partition: 1, messages: [at(10), at(11)] }, "9");
  const second = decodeBatch("g", {
    topic: "t",
    partition: 1,
    messages: [at(12), { offset: "13", key: null, value: Buffer.from("{") }],
  }, "12");
  assertEquals(first.progress, [{ partition: 1, firstOffset: "10", nextOffset: "12", fetchedFrom: "9" }]);
  const merged = mergeBatches([first, second]);
  assertEquals(merged.checks.map((incoming) => incoming.offset), ["10", "11", "12"]);
  assertEquals(merged.deadLetters.map((letter) => letter.offset), ["13"]);
  assertEquals(merged.progress, [{ partition: 1, firstOffset: "10", nextOffset: "14", fetchedFrom: "9" }]);
  assertEquals(mergeBatches([second]), second);
});

Deno.test("decodeBatch() ends past the transaction markers kafkajs counts after the last message", () => {
  const value = Buffer.from(encodeCheck(makeCheck("alpha", new Date("2026-01-02T03:04:05.000Z"))));
  const batch = decodeBatch("g", {
    topic: "t",
    partition: 0,
    messages: [{ offset: "3", key: null, value }],
    lastOffset: () => "4",
  }, "3");
  assertEquals(batch.progress, [{ partition: 0, firstOffset: "3", nextOffset: "5", fetchedFrom: "3" }]);
});

Deno.test("decodeBatch() makes a dead letter of a check starting more than 24 hours past the sink's clock", () => {
  const now = Date.parse("2026-12-01T12:00:00.000Z");
  const message = (offset: number, startedAt: string) => ({
    offset: String(offset),
    key: null,
    value: Buffer.from(encodeCheck(makeCheck("alpha", new Date(startedAt)))),
  });
  const batch = decodeBatch(
    "g",
    {
      topic: "t",
      partition: 0,
      messages: [
        message(1, "2026-12-02T11:59:59.999Z"),
        message(2, "2026-12-02T12:00:00.000Z"),
        message(3, "2026-12-02T12:00:01.000Z"),
        message(4, "2031-06-01T00:00:00.000Z"),
      ],
    },
    undefined,
    now,
  );
  // Within the day (to the second) a clock ahead is the fold's matter (src/db/writer.ts MAX_FUTURE_MS).
  assertEquals(batch.checks.map((incoming) => incoming.offset), ["1", "2"]);
  assertEquals(batch.deadLetters.map((letter) => [letter.offset, letter.error]), [
    [
      "3",
      "Cannot store a check whose started_at 2026-12-02T12:00:01.000Z is more than 24 hours ahead of the sink's " +
      "clock (2026-12-01T12:00:00.000Z): the agent's clock is wrong",
    ],
    [
      "4",
      "Cannot store a check whose started_at 2031-06-01T00:00:00.000Z is more than 24 hours ahead of the sink's " +
      "clock (2026-12-01T12:00:00.000Z): the agent's clock is wrong",
    ],
  ]);
  assertEquals(batch.progress, [{ partition: 0, firstOffset: "1", nextOffset: "5" }]);
});
