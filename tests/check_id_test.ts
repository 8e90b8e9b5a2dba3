import { assertEquals, assertMatch } from "./_assert.ts";
import { checkIdToUuid, isCheckId, newCheckId } from "../src/check_id.ts";

Deno.test("newCheckId() makes time-ordered UUIDv7s", () => {
  const a = newCheckId(1_700_000_000_000);
  const b = newCheckId(1_700_000_000_001);
  assertMatch(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assertEquals(a.slice(0, 13), "018bcfe5-6800");
  assertEquals(a < b, true);
  assertEquals(newCheckId() === newCheckId(), false);
});

Deno.test("newCheckId() stays a valid, unique UUIDv7 across refills of its random pool", () => {
  const ids = Array.from({ length: 2_000 }, (_, i) => newCheckId(1_700_000_000_000 + i));
  for (const id of ids) assertMatch(id, /^018bcfe5-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assertEquals(new Set(ids).size, 2_000);
  assertEquals(ids.at(-1)!.slice(0, 13), `018bcfe5-${(0x6800 + 1_999).toString(16)}`);
  assertEquals([...ids].sort(), ids);
});

Deno.test("isCheckId() takes UUIDs and ULIDs in either case, nothing else", () => {
  for (const id of ["01936b2c-5d1e-7f3a-9b2c-1d2e3f4a5b6c", "01936B2C-5D1E-7F3A-9B2C-1D2E3F4A5B6C"]) {
    assertEquals(isCheckId(id), true, id);
  }
  for (const id of ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "01arz3ndektsv4rrffq69g5fav"]) {
    assertEquals(isCheckId(id), true, id);
  }
  const bad = [
    "",
    "01936b2c5d1e7f3a9b2c1d2e3f4a5b6c",
    "01936b2c-5d1e-7f3a-9b2c-1d2e3f4a5b6",
    "81ARZ3NDEKTSV4RRFFQ69G5FAV",
  ];
  for (const id of [...bad, "01ARZ3NDEKTSV4RRFFQ69G5FAU", "01936b2c-5d1e-7f3a-9b2c-1d2e3f4a5b6c\n"]) {
    assertEquals(isCheckId(id), false, JSON.stringify(id));
  }
});

Deno.test("checkIdToUuid() gives the database's lower-case UUID text for a UUID or a ULID", () => {
  assertEquals(checkIdToUuid("01936B2C-5D1E-7F3A-9B2C-1D2E3F4A5B6C"), "01936b2c-5d1e-7f3a-9b2c-1d2e3f4a5b6c");
  assertEquals(checkIdToUuid("01ARZ3NDEKTSV4RRFFQ69G5FAV"), "01563e3a-b5d3-d676-4c61-efb99302bd5b");
  assertEquals(checkIdToUuid("01arz3ndektsv4rrffq69g5fav"), "01563e3a-b5d3-d676-4c61-efb99302bd5b");
});
