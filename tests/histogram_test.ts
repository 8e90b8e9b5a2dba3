import { assertEquals } from "./_assert.ts";
import { Histogram } from "../src/histogram.ts";

Deno.test("Histogram answers percentiles at bucket resolution and keeps the exact maximum", () => {
  const histogram = new Histogram();
  for (let i = 1; i <= 100; i++) histogram.record(i * 0.5); // 0.5 .. 50 ms
  assertEquals(histogram.count, 100);
  assertEquals(histogram.percentile(50), 25.1);
  assertEquals(histogram.percentile(99), 49.6);
  assertEquals(histogram.max, 50);
});

Deno.test("Histogram uses 1 ms buckets past 100 ms and overflows past 10 s", () => {
  const histogram = new Histogram();
  histogram.record(250.4);
  assertEquals(histogram.percentile(100), 250.4);
  histogram.record(60_000);
  assertEquals(histogram.percentile(100), 60_000);
  assertEquals(histogram.percentile(50), 251);
});

Deno.test("Histogram.reset() forgets everything and an empty histogram answers 0", () => {
  const histogram = new Histogram();
  histogram.record(5);
  histogram.reset();
  assertEquals([histogram.count, histogram.max, histogram.percentile(99)], [0, 0, 0]);
});
