import { assertEquals, assertRejects } from "./_assert.ts";
import { SharedRead } from "../src/serve/shared_read.ts";

Deno.test("SharedRead: requests at once share one read, and the next ones within the time reuse it", async () => {
  let clock = 0;
  let reads = 0;
  const shared = new SharedRead<string>(5_000, () => clock);
  const read = () => Promise.resolve(`text ${++reads}`);
  assertEquals(await Promise.all([shared.get(read), shared.get(read), shared.get(read)]), [
    "text 1",
    "text 1",
    "text 1",
  ]);
  clock = 4_999;
  assertEquals(await shared.get(read), "text 1");
  clock = 5_000;
  assertEquals(await shared.get(read), "text 2");
  assertEquals(reads, 2);
});

Deno.test("SharedRead: a failed read fails the requests that shared it and is not kept", async () => {
  let fail = true;
  const shared = new SharedRead<string>(5_000);
  const read = () => fail ? Promise.reject(new Error("database away")) : Promise.resolve("text");
  const both = [shared.get(read), shared.get(read)];
  for (const answer of both) await assertRejects(() => answer, Error, "database away");
  fail = false;
  assertEquals(await shared.get(read), "text");
});
