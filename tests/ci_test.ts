import { assertEquals } from "./_assert.ts";

const root = new URL("..", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));

Deno.test(".ci/run names the Deno version once and runs the README's test command with it", async () => {
  const script = await read(".ci/run");
  const versions = [...script.matchAll(/\d+\.\d+\.\d+/g)].map((match) => match[0]);
  assertEquals(versions.length, 1, `versions named in .ci/run: ${versions.join(", ")}`);
  assertEquals(/^DENO_VERSION=(\S+)$/m.exec(script)?.[1], versions[0]);
  assertEquals(script.includes('\nnpx -y "deno@$DENO_VERSION" task test 2>&1'), true);
  const readme = await read("README.md");
  const testCommand = /^npx -y deno@(\S+) task test\b/m.exec(readme);
  assertEquals(testCommand?.[1], versions[0], "the README's test command");
  const named = [...readme.matchAll(/deno@(\d+\.\d+\.\d+)/g)].map((match) => match[1]);
  assertEquals(named.filter((version) => version !== versions[0]), [], "every deno@ version in the README");
});
