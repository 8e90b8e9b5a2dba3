import { assertEquals, assertThrows } from "./_assert.ts";
import { formatDuration, parseDuration } from "../src/duration.ts";

Deno.test("parseDuration() reads each unit and combinations of them in milliseconds", () => {
  const cases: [string, number][] = [
    ["500ms", 500],
    ["30s", 30_000],
    ["1m", 60_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["1h2m3s4ms", 3_723_004],
    ["0s", 0],
    ["90s", 90_000],
    ["007s", 7_000],
  ];
  for (const [text, ms] of cases) assertEquals(parseDuration(text), ms, text);
});

Deno.test("parseDuration() rejects text that is not a duration with a SyntaxError naming it", () => {
  const bad = [
    "",
    "fast",
    "30",
    "s",
    "1.5s",
    "-1s",
    "+1s",
    " 30s",
    "30s ",
    "30 s",
    "1d",
    "30S",
    "30s1m",
    "1s1s",
    "1m30",
  ];
  for (const text of bad) {
    assertThrows(
      () => parseDuration(text),
      SyntaxError,
      `Cannot parse duration ${JSON.stringify(text)}: expected integers with units h, m, s or ms, ` +
        `largest first, such as "30s", "1m30s" or "500ms"`,
    );
  }
});

Deno.test("parseDuration() rejects a duration too large to count exactly with a RangeError", () => {
  assertThrows(
    () => parseDuration("9999999999999999h"),
    RangeError,
    `Cannot parse duration "9999999999999999h": the value is too large`,
  );
});

Deno.test("formatDuration() writes the shortest text that parseDuration() reads back", () => {
  const cases: [number, string][] = [[0, "0s"], [500, "500ms"], [30_000, "30s"], [90_000, "1m30s"], [
    3_723_004,
    "1h2m3s4ms",
  ], [7_200_000, "2h"]];
  for (const [ms, text] of cases) {
    assertEquals(formatDuration(ms), text);
    assertEquals(parseDuration(text), ms);
  }
});

Deno.test("formatDuration() rejects a negative or fractional number of milliseconds", () => {
  assertThrows(
    () => formatDuration(-1),
    RangeError,
    "Cannot format duration: 'ms' must be a non-negative integer: current value is -1",
  );
  assertThrows(
    () => formatDuration(1.5),
    RangeError,
    "Cannot format duration: 'ms' must be a non-negative integer: current value is 1.5",
  );
});
