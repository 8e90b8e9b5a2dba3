import { assertEquals } from "./_assert.ts";

const root = new URL("../", import.meta.url);

/** The relative imports of every module under `folder`, resolved to paths from the project root. */
async function importsOf(folder: string): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for await (const entry of Deno.readDir(new URL(folder, root))) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const file = new URL(`${folder}${entry.name}`, root);
    const text = await Deno.readTextFile(file);
    const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)].map((m) =>
      new URL(m[1]!, file).pathname.slice(root.pathname.length)
    );
    found.set(`${folder}${entry.name}`, specifiers);
  }
  return found;
}

Deno.test("src/serve imports neither the agent (src/check) nor the sink (src/sink), and holds no SQL", async () => {
  const offending: string[] = [];
  for (const [file, imports] of await importsOf("src/serve/")) {
    for (const target of imports) {
      if (target.startsWith("src/check/") || target.startsWith("src/sink/")) {
        offending.push(`${file} -> ${target}`);
      }
    }
    if (/\bsql`|\.unsafe\(/.test(await Deno.readTextFile(new URL(file, root)))) {
      offending.push(`${file}: SQL`);
    }
  }
  assertEquals(offending, []);
});

Deno.test("the read side's queries in src/db never write", async () => {
  const writes: string[] = [];
  for await (const entry of Deno.readDir(new URL("src/db/", root))) {
    if (!entry.name.startsWith("read_")) continue;
    const text = await Deno.readTextFile(new URL(`src/db/${entry.name}`, root));
    if (
      /\b(insert|update|delete|truncate|create|drop|alter)\s/i.test(text.replace(/\/\*\*[\s\S]*?\*\//g, ""))
    ) {
      writes.push(entry.name);
    }
  }
  assertEquals(writes, []);
});
