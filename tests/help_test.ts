import { assertEquals } from "./_assert.ts";
import { COMMANDS } from "../main.ts";
import { COMMON_SECTION, type FlagSpec } from "../src/args.ts";
import { type CommandDefinition, flagNames, formatHelp, variableNames } from "../src/help.ts";

/**
 * What is wrong with a command's help: flags or variables it accepts that its help does not show, flags or
 * variables its help mentions that it does not accept, and flags of its table missing from its sections.
 */
function helpProblems(command: CommandDefinition): string[] {
  const text = formatHelp(command.help);
  const problems: string[] = [];
  const accepted = new Set<string>();
  const variables = variableNames(command.help.sections);
  for (const [name, spec] of Object.entries(command.flags) as [string, FlagSpec][]) {
    accepted.add(`--${name}`);
    if (spec.short !== undefined) accepted.add(`-${spec.short}`);
    if (spec.env !== undefined) variables.add(spec.env);
  }
  const shown = flagNames(command.help.sections);
  for (const flag of accepted) {
    if (!shown.has(flag)) problems.push(`${flag} is accepted but in no help section`);
  }
  const mentioned = new Set([...text.matchAll(/(?<![\w-])(--?[a-zA-Z][\w-]*)/g)].map((match) => match[1]!));
  for (const flag of accepted) if (!mentioned.has(flag)) problems.push(`${flag} is not in the help`);
  for (const flag of mentioned) {
    if (!accepted.has(flag)) problems.push(`${flag} is in the help but not accepted`);
  }
  const named = new Set([...text.matchAll(/\b((?:MONITOR|DATABASE|PG)_?[A-Z][A-Z_]*)\b/g)].map((m) => m[1]!));
  for (const variable of variables) if (!named.has(variable)) problems.push(`${variable} is not in the help`);
  for (const variable of named) {
    if (!variables.has(variable)) problems.push(`${variable} is in the help but not read`);
  }
  return problems.sort();
}

for (const [name, entry] of Object.entries(COMMANDS)) {
  Deno.test(`monitor ${name}: its help shows every flag and variable it accepts, and no other`, async () => {
    const command = await entry.load();
    assertEquals(command.help.command, `monitor ${name}`);
    assertEquals(helpProblems(command), []);
  });
}

Deno.test("helpProblems() reports a flag missing from the help, a stray flag and a stray variable", () => {
  const command: CommandDefinition = {
    help: {
      command: "monitor bad",
      summary: "uses --brokers without taking it; reads MONITOR_NOTHING",
      sections: [COMMON_SECTION, {
        title: "OPTIONS",
        flags: { shown: { type: "boolean", description: "x" } },
      }],
    },
    flags: {
      ...COMMON_SECTION.flags,
      shown: { type: "boolean", description: "x" },
      hidden: { type: "string", env: "MONITOR_HIDDEN", description: "not in any section" },
    },
    run: () => Promise.resolve(0),
  };
  assertEquals(helpProblems(command), [
    "--brokers is in the help but not accepted",
    "--hidden is accepted but in no help section",
    "--hidden is not in the help",
    "MONITOR_HIDDEN is not in the help",
    "MONITOR_NOTHING is in the help but not read",
  ]);
});

Deno.test("formatHelp() puts each flag, its variable and its default on one row, wrapped under the column", () => {
  const text = formatHelp({
    command: "monitor demo",
    summary: "a demonstration",
    about: "One paragraph.",
    sections: [{
      title: "OPTIONS",
      flags: {
        size: { type: "string", env: "MONITOR_SIZE", arg: "N", description: "how many", default: "3" },
        quiet: { type: "boolean", short: "q", description: "say less ".repeat(12).trim() },
      },
      variables: { MONITOR_SECRET: "a secret" },
    }],
  });
  assertEquals(
    text,
    [
      "monitor demo: a demonstration",
      "",
      "USAGE:",
      "  monitor demo [OPTIONS]",
      "",
      "One paragraph.",
      "",
      "OPTIONS:",
      "  --size N            how many (MONITOR_SIZE; default 3)",
      "  -q, --quiet         say less say less say less say less say less say less say less say less say less say",
      "                      less say less say less",
      "  MONITOR_SECRET      a secret",
      "",
    ].join("\n"),
  );
});
