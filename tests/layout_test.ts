/**
 * The import boundaries of the layout: the agent (src/check) ships without the database, the sink
 * (src/sink) without the agent, the read side (src/serve) without either program, and the shared modules
 * (top of src/, and src/db) belong to no program; src/ imports nothing from tests/, bench/ or dev/, and the
 * benchmarks nothing from tests/. Read from the import specifiers of every module under src/ and bench/.
 */
import { assertEquals } from "./_assert.ts";

const ROOT = new URL("..", import.meta.url);

/** A folder whose modules must not import any module under the forbidden folders. */
interface Boundary {
  readonly from: string;
  readonly forbidden: readonly string[];
  /** Only modules directly in `from`, not in its subfolders (for the shared modules at the top of src/). */
  readonly topOnly?: boolean;
}

const BOUNDARIES: readonly Boundary[] = [
  { from: "src/check/", forbidden: ["src/db/", "src/sink/", "src/serve/"] },
  { from: "src/sink/", forbidden: ["src/check/"] },
  { from: "src/serve/", forbidden: ["src/check/", "src/sink/"] },
  { from: "src/db/", forbidden: ["src/check/", "src/sink/", "src/serve/"] },
  { from: "src/", forbidden: ["src/check/", "src/sink/", "src/serve/", "src/db/"], topOnly: true },
  // The program ships without its tests, benchmarks and dev tools; the benchmarks do not lean on test helpers.
  { from: "src/", forbidden: ["tests/", "bench/", "dev/"] },
  { from: "bench/", forbidden: ["tests/"] },
];

/** Module path (relative to the repository) to the paths it imports (relative too; packages as written). */
type ImportGraph = ReadonlyMap<string, readonly string[]>;

/**
 * The specifiers of `source`'s static imports and re-exports, side-effect imports and dynamic imports of
 * a string literal. Comments are dropped first, so that examples in JSDoc do not count as imports.
 */
function importSpecifiers(source: string): string[] {
  const code = source
    .replace(/^\s*\/\*[\s\S]*?\*\//gm, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const specifiers: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) specifiers.push(match[1]!);
  }
  return specifiers;
}

/** The import graph of every .ts module under `dir` (relative to the repository root). */
async function readGraph(dir: string): Promise<ImportGraph> {
  const graph = new Map<string, string[]>();
  for await (const path of walk(dir)) {
    const source = await Deno.readTextFile(new URL(path, ROOT));
    graph.set(path, importSpecifiers(source).map((specifier) => resolve(path, specifier)));
  }
  return graph;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) yield* walk(`${path}/`);
    else if (entry.isFile && path.endsWith(".ts")) yield path;
  }
}

/** `specifier` as a repository-relative path when it is relative, else unchanged (a package). */
function resolve(from: string, specifier: string): string {
  if (!specifier.startsWith(".")) return specifier;
  const url = new URL(specifier, new URL(from, ROOT));
  return url.pathname.slice(ROOT.pathname.length);
}

/** Every import that crosses a boundary, as `importer -> imported`. */
function violations(graph: ImportGraph, boundaries: readonly Boundary[]): string[] {
  const found: string[] = [];
  for (const [module, imports] of graph) {
    for (const boundary of boundaries) {
      if (!module.startsWith(boundary.from)) continue;
      if (boundary.topOnly && module.slice(boundary.from.length).includes("/")) continue;
      for (const imported of imports) {
        if (boundary.forbidden.some((folder) => imported.startsWith(folder))) {
          found.push(`${module} -> ${imported}`);
        }
      }
    }
  }
  return found.sort();
}

Deno.test("layout: no module under src/ or bench/ imports across a boundary", async () => {
  const graph = new Map([...await readGraph("src/"), ...await readGraph("bench/")]);
  assertEquals(
    graph.has("src/check/probe.ts") && graph.has("bench/sink/copy.ts"),
    true,
    "the walk found both",
  );
  assertEquals(violations(graph, BOUNDARIES), []);
});

Deno.test("layout: the checker reports each crossing import of a synthetic bad graph", () => {
  const graph: ImportGraph = new Map([
    ["src/check/probe.ts", ["src/message.ts", "src/db/writer.ts", "npm:kafkajs"]],
    ["src/check/deep/x.ts", ["src/sink/consumer.ts"]],
    ["src/sink/consumer.ts", ["src/db/writer.ts", "src/check/site.ts"]],
    ["src/serve/http.ts", ["src/db/status.ts", "src/sink/command.ts", "src/check/config.ts"]],
    ["src/db/writer.ts", ["src/message.ts", "src/serve/http.ts"]],
    ["src/args.ts", ["src/db/connect.ts", "src/log.ts"]],
    ["src/log.ts", ["tests/_assert.ts"]],
    ["bench/sink/raw.ts", ["tests/_pg.ts", "dev/services.ts", "src/db/connect.ts"]],
  ]);
  assertEquals(violations(graph, BOUNDARIES), [
    "bench/sink/raw.ts -> tests/_pg.ts",
    "src/args.ts -> src/db/connect.ts",
    "src/check/deep/x.ts -> src/sink/consumer.ts",
    "src/check/probe.ts -> src/db/writer.ts",
    "src/db/writer.ts -> src/serve/http.ts",
    "src/log.ts -> tests/_assert.ts",
    "src/serve/http.ts -> src/check/config.ts",
    "src/serve/http.ts -> src/sink/command.ts",
    "src/sink/consumer.ts -> src/check/site.ts",
  ]);
});

Deno.test("layout: importSpecifiers() finds every form of import and skips comments", () => {
  const source = [
    "/**",
    " * @example",
    " * ```ts",
    ' * import { writeBatch } from "../db/writer.ts";',
    " * ```",
    " */",
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    "import {",
    "  c,",
    "  type D,",
    '} from "./c.ts";',
    'export { e } from "./e.ts";',
    'export * from "./f.ts";',
    'import "./side_effect.ts";',
    'import postgres from "postgres";',
    '// import { ignored } from "./commented.ts";',
    'const lazy = await import("./lazy.ts");',
  ].join("\n");
  assertEquals(importSpecifiers(source).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "./e.ts",
    "./f.ts",
    "./lazy.ts",
    "./side_effect.ts",
    "postgres",
  ]);
});

Deno.test("layout: the parsed graph agrees with Deno's own module graph of main.ts", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assertEquals(output.code, 0);
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string; dependencies?: { specifier: string }[] }[];
  };
  const graph = await readGraph("src/");
  let compared = 0;
  for (const module of info.modules) {
    if (!module.specifier.startsWith(new URL("src/", ROOT).href)) continue;
    const path = module.specifier.slice(ROOT.href.length);
    const fromDeno = [...new Set((module.dependencies ?? []).map((d) => resolve(path, d.specifier)))].sort();
    assertEquals([...new Set(graph.get(path) ?? [])].sort(), fromDeno, path);
    compared++;
  }
  assertEquals(compared > 30, true, `compared ${compared} modules`);
});
