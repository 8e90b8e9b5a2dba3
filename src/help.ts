/**
 * Help text made from the flag tables, so that a command's help lists exactly the flags it accepts.
 *
 * @module
 */
import type { FlagSpec, HelpSection } from "./args.ts";

/** What a command's help says: its one-line summary, usage, an optional paragraph and its sections. */
export interface CommandHelp {
  /** The command as typed, e.g. `monitor check`. */
  readonly command: string;
  readonly summary: string;
  readonly about?: string;
  readonly sections: readonly HelpSection[];
}

const WIDTH = 110;

/**
 * Renders `help`: `command: summary`, USAGE, the paragraph, then each section with one row per flag
 * (`--flag ARG   description (VARIABLE; default X)`) and per variable without a flag.
 *
 * @example
 * ```ts
 * import { COMMON_SECTION } from "./args.ts";
 * import { formatHelp } from "./help.ts";
 * const text = formatHelp({ command: "monitor migrate", summary: "upgrade the schema", sections: [COMMON_SECTION] });
 * ```
 */
export function formatHelp(help: CommandHelp): string {
  const rows = help.sections.map((section) => ({
    title: section.title,
    rows: [
      ...Object.entries(section.flags).map(([name, spec]) =>
        [flagLabel(name, spec), flagText(spec)] as const
      ),
      ...Object.entries(section.variables ?? {}),
    ],
  }));
  const column = Math.max(22, ...rows.flatMap((s) => s.rows.map(([label]) => label.length + 4)));
  const lines = [`${help.command}: ${help.summary}`, "", "USAGE:", `  ${help.command} [OPTIONS]`, ""];
  if (help.about !== undefined) lines.push(...wrap(help.about, 0, WIDTH), "");
  for (const section of rows) {
    lines.push(`${section.title}:`);
    for (const [label, text] of section.rows) {
      const [first = "", ...rest] = wrap(text, column, WIDTH);
      lines.push(`  ${label.padEnd(column - 2)}${first.trimStart()}`, ...rest);
    }
    lines.push("");
  }
  return lines.join("\n");
}

/** Every flag of `sections` as `--name` (and `-x`), for checking text against the flags a command takes. */
export function flagNames(sections: readonly HelpSection[]): Set<string> {
  const names = new Set<string>();
  for (const section of sections) {
    for (const [name, spec] of Object.entries(section.flags)) {
      names.add(`--${name}`);
      if (spec.short !== undefined) names.add(`-${spec.short}`);
    }
  }
  return names;
}

/** Every environment variable of `sections`: those of the flags and those without a flag. */
export function variableNames(sections: readonly HelpSection[]): Set<string> {
  const names = new Set<string>();
  for (const section of sections) {
    for (const spec of Object.values(section.flags)) if (spec.env !== undefined) names.add(spec.env);
    for (const name of Object.keys(section.variables ?? {})) names.add(name);
  }
  return names;
}

function flagLabel(name: string, spec: FlagSpec): string {
  const long = spec.arg === undefined ? `--${name}` : `--${name} ${spec.arg}`;
  return spec.short === undefined ? long : `-${spec.short}, ${long}`;
}

function flagText(spec: FlagSpec): string {
  const extras = [spec.env, spec.default === undefined ? undefined : `default ${spec.default}`]
    .filter((extra) => extra !== undefined);
  return extras.length === 0 ? spec.description : `${spec.description} (${extras.join("; ")})`;
}

/** Breaks `text` into lines of at most `width` characters, each indented by `indent` spaces. */
function wrap(text: string, indent: number, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && indent + line.length + 1 + word.length > width) {
      lines.push(" ".repeat(indent) + line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(" ".repeat(indent) + line);
  return lines;
}

/** One subcommand as `main.ts` runs it: its help, the flags it parses, and the command itself. */
export interface CommandDefinition {
  readonly help: CommandHelp;
  /** Every flag the command accepts: the flags of its help sections, no more and no fewer. */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Runs the command after `main.ts` has answered `--help` and `--version`; returns the exit code. */
  readonly run: (
    args: readonly string[],
    env: Readonly<Record<string, string | undefined>>,
    shutdown: AbortSignal,
  ) => Promise<number>;
}
