/** The logger's lines: a line made elsewhere (the publisher worker's) keeps the time it was made. */
import { assertEquals } from "./_assert.ts";
import { createLogger } from "../src/log.ts";

Deno.test("createLogger() writes a line made elsewhere at the time it was made, in text and in JSON", () => {
  const lines: string[] = [];
  const made = Date.parse("2026-12-01T21:04:39.400Z");
  createLogger({ format: "text", write: (line) => lines.push(line) }).warn(
    "kafka: refused",
    { repeated: 3 },
    made,
  );
  createLogger({ format: "json", write: (line) => lines.push(line) }).info("created topic", {}, made);
  assertEquals(lines, [
    "2026-12-01T21:04:39.400Z WARN  kafka: refused repeated=3",
    '{"time":"2026-12-01T21:04:39.400Z","level":"info","message":"created topic"}',
  ]);
});

Deno.test("createLogger() stamps a line with the time it is written when no time is given", () => {
  const lines: string[] = [];
  const before = Date.now();
  createLogger({ format: "json", write: (line) => lines.push(line) }).error("gone");
  const time = Date.parse(JSON.parse(lines[0]!).time);
  assertEquals(time >= before && time <= Date.now(), true, lines[0]);
});
