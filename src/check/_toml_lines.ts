/**
 * Where each key of a TOML text stands: smol-toml reports no positions of keys, and config errors must name
 * the line. Private to `config.ts`.
 *
 * @module
 */

const pathKey = (path: readonly string[]): string => JSON.stringify(path);

/**
 * The deepest key path recorded. The deepest a valid config goes is `site.N.headers.NAME`; anything deeper is
 * an error found at a shallower key, whose line is recorded. Without a bound, a key of n dotted parts recorded
 * all its n prefixes, each made into text: 30,000 parts took 16 s and 1.9 GB.
 */
const MAX_RECORDED_DEPTH = 8;
/** The most key paths recorded: an array of millions of elements would otherwise fill the map. */
const MAX_RECORDED_PATHS = 1_000_000;

/** The line of `path`, or of its deepest recorded prefix (a table header), or 1. */
export function lineOf(lines: ReadonlyMap<string, number>, path: readonly string[]): number {
  for (let n = path.length; n > 0; n--) {
    const line = lines.get(pathKey(path.slice(0, n)));
    if (line !== undefined) return line;
  }
  return 1;
}

/**
 * Maps each key path (`["site", "0", "headers", "Accept"]`) to the line that defines it, as smol-toml
 * reports no positions. Runs only on text that parsed, so it skips what it does not expect.
 */
export function locateKeys(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  const arrayCounts = new Map<string, number>();
  let pos = 0;
  let line = 1;
  const advance = (count = 1): void => {
    for (let i = 0; i < count && pos < text.length; i++) if (text[pos++] === "\n") line++;
  };
  const record = (path: readonly string[], at: number): void => {
    if (path.length > MAX_RECORDED_DEPTH || lines.size >= MAX_RECORDED_PATHS) return;
    const key = pathKey(path);
    if (!lines.has(key)) lines.set(key, at);
  };
  const skipBlank = (newlines: boolean): void => {
    for (
      let c = text[pos];
      c === " " || c === "\t" || c === "\r" || c === "#" || (newlines && c === "\n");
      c = text[pos]
    ) {
      if (c === "#") { while (pos < text.length && text[pos] !== "\n") advance(); }
      else advance();
    }
  };
  const readString = (): string => {
    const quote = text[pos] ?? '"';
    const delimiter = text.startsWith(quote.repeat(3), pos) ? quote.repeat(3) : quote;
    advance(delimiter.length);
    const start = pos;
    while (pos < text.length && !text.startsWith(delimiter, pos)) {
      advance(quote === '"' && text[pos] === "\\" ? 2 : 1);
    }
    const raw = text.slice(start, pos);
    advance(delimiter.length);
    while (delimiter.length === 3 && text[pos] === quote) advance(); // """a""""" ends with two quotes of content
    if (quote === "'") return raw;
    try {
      return JSON.parse(`"${raw}"`);
    } catch {
      return raw;
    }
  };
  const readKey = (): string[] => {
    const parts: string[] = [];
    for (;;) {
      skipBlank(false);
      if (text[pos] === '"' || text[pos] === "'") parts.push(readString());
      else {
        const bare = /[A-Za-z0-9_-]*/y;
        bare.lastIndex = pos;
        const part = bare.exec(text)?.[0] ?? "";
        if (part === "") return parts;
        parts.push(part);
        advance(part.length);
      }
      skipBlank(false);
      if (text[pos] !== ".") return parts;
      advance();
    }
  };
  const readValue = (path: readonly string[]): void => {
    const open = text[pos];
    if (open === '"' || open === "'") return void readString();
    if (open !== "[" && open !== "{") {
      while (pos < text.length && !/[\s,\]}#]/.test(text[pos] ?? "")) advance();
      return;
    }
    advance();
    for (let index = 0;; index++) {
      skipBlank(true);
      const start = pos;
      if (pos >= text.length || text[pos] === (open === "[" ? "]" : "}")) break;
      if (open === "[") {
        // Past the recorded depth the path is not followed, so that a deep key's elements are not copies of it.
        const element = path.length < MAX_RECORDED_DEPTH ? [...path, String(index)] : path;
        record(element, line);
        readValue(element);
      } else readKeyValue(path);
      skipBlank(true);
      if (text[pos] === ",") advance();
      if (pos === start) advance(); // not valid TOML: never loop in place
    }
    advance();
  };
  const readKeyValue = (table: readonly string[]): void => {
    const at = line;
    const path = [...table];
    for (const key of readKey()) {
      if (path.length >= MAX_RECORDED_DEPTH) break;
      path.push(key);
      record(path, at);
    }
    skipBlank(false);
    if (text[pos] === "=") advance();
    skipBlank(false);
    readValue(path);
  };
  let table: string[] = [];
  for (skipBlank(true); pos < text.length; skipBlank(true)) {
    const start = pos;
    if (text[pos] === "[") {
      const isArray = text[pos + 1] === "[";
      const at = line;
      advance(isArray ? 2 : 1);
      const keys = readKey();
      table = [];
      for (const [i, key] of keys.entries()) {
        table.push(key);
        // Past the recorded depth no line is looked up: the rest of the header is not followed.
        if (table.length > MAX_RECORDED_DEPTH) break;
        const count = arrayCounts.get(pathKey(table));
        // [[site]] opens element n of "site"; [site.headers] lands in its latest element.
        if (isArray && i === keys.length - 1) {
          arrayCounts.set(pathKey(table), (count ?? 0) + 1);
          table.push(String(count ?? 0));
        } else if (count !== undefined) table.push(String(count - 1));
        // Each table the header names is defined here, unless an earlier line defined it.
        record(table, at);
      }
    } else readKeyValue(table);
    while (pos < text.length && text[pos] !== "\n") advance(); // only a comment can follow
    if (pos === start) advance();
  }
  return lines;
}
