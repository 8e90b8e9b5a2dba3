import { assertEquals } from "./_assert.ts";
import { isoTimestamp } from "../src/iso_timestamp.ts";

Deno.test("isoTimestamp() writes what toISOString() writes, across days, years and the fallback ranges", () => {
  assertEquals(isoTimestamp(Date.UTC(2026, 10, 30, 9, 5, 1, 234)), "2026-11-30T09:05:01.234Z");
  assertEquals(isoTimestamp(0), "1970-01-01T00:00:00.000Z");
  const times = [
    Date.UTC(2026, 11, 31, 23, 59, 59, 999),
    Date.UTC(2027, 0, 1),
    Date.UTC(2028, 1, 29, 12, 0, 0, 1),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(10000, 0, 1),
    -1,
    -86_400_001,
    1.5,
    Date.UTC(2026, 10, 30, 9, 5, 1, 234) + 0.7,
  ];
  // Every millisecond field value, and back and forth across a day boundary (the cached day changes).
  const start = Date.UTC(2026, 10, 30, 23, 59, 58);
  for (let ms = 0; ms < 3000; ms += 7) times.push(start + ms, start - ms * 1000);
  for (const time of times) assertEquals(isoTimestamp(time), new Date(time).toISOString(), `time ${time}`);
});
