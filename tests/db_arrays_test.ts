import { assertEquals, assertThrows } from "./_assert.ts";
import { boolArray, numberArray, textArray } from "../src/db/_arrays.ts";
import { createTestDatabase } from "./_pg.ts";

Deno.test("textArray() quotes every element, escapes backslash and double quote, and writes null as NULL", () => {
  assertEquals(textArray([]), "{}");
  assertEquals(textArray(["a", "b c", ""]), '{"a","b c",""}');
  assertEquals(
    textArray(['say "hi"', "back\\slash", null, "NULL"]),
    '{"say \\"hi\\"","back\\\\slash",NULL,"NULL"}',
  );
  assertEquals(textArray(["{,}", "é"]), '{"{,}","é"}');
  assertEquals(textArray(["only", 'one "quoted"']), '{"only","one \\"quoted\\""}');
});

Deno.test("numberArray() writes integers and floats as JavaScript prints them, null as NULL", () => {
  assertEquals(numberArray([]), "{}");
  assertEquals(numberArray([1, -2, 0.5, 12.345, null, 1e21]), "{1,-2,0.5,12.345,NULL,1e+21}");
  // Without a null, the values are joined in one go: the same text.
  assertEquals(numberArray([1, -2, 0.5, 12.345, 1e21, -0]), "{1,-2,0.5,12.345,1e+21,0}");
});

Deno.test("numberArray() refuses NaN and the infinities", () => {
  assertThrows(() => numberArray([1, NaN]), RangeError, "Cannot write a number to the database: got NaN");
  assertThrows(
    () => numberArray([Infinity]),
    RangeError,
    "Cannot write a number to the database: got Infinity",
  );
});

Deno.test("boolArray() writes t, f and NULL", () => {
  assertEquals(boolArray([true, false, null]), "{t,f,NULL}");
  assertEquals(boolArray([]), "{}");
});

Deno.test("the literals read back as the same values in PostgreSQL", async () => {
  const db = await createTestDatabase("monitor_arrays");
  try {
    const texts = ['say "hi"', "back\\slash", null, "NULL", "{,}", "é", ""];
    // Read back as JSON made by the server, so that the client's own array parser plays no part.
    const [row] = await db.sql`select array_to_json(${textArray(texts)}::text[])::text as t,
      array_to_json(${numberArray([1, 0.5, null, 1e21])}::float8[])::text as n,
      array_to_json(${boolArray([true, false, null])}::bool[])::text as b`;
    assertEquals(JSON.parse(row!.t), texts);
    assertEquals(JSON.parse(row!.n), [1, 0.5, null, 1e21]);
    assertEquals(JSON.parse(row!.b), [true, false, null]);
  } finally {
    await db.drop();
  }
});
