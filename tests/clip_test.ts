import { assertEquals } from "./_assert.ts";
import { clip } from "../src/clip.ts";

Deno.test("clip() keeps short text, cuts long text with an ellipsis to the length", () => {
  assertEquals(clip("connection refused", 18), "connection refused");
  assertEquals(clip("connection refused", 10), "connectio…");
  assertEquals(clip("connection refused", 10).length, 10);
});

Deno.test("clip() leaves out a character the cut would split, and mends other unpaired surrogates", () => {
  // "😀" is two UTF-16 code units; the cut at 3 (2 kept and the ellipsis) falls between them.
  assertEquals(clip("a😀bcdef", 3), "a…");
  assertEquals(clip("ab😀cdef", 4), "ab…");
  assertEquals(clip("a\ud800bcdef", 4), "a\ufffdb…");
});
