/**
 * `monitor status`: every site's state and uptime in the terminal (or one site's detail), as a table or
 * JSON, once or redrawn every few seconds. Exits 0 when every site shown is up, 1 when any is degraded, down
 * or stale, so cron jobs and CI can use it.
 *
 * @module
 */
import type postgres from "postgres";
import {
  COMMON_FLAGS,
  COMMON_SECTION,
  DATABASE_FLAGS,
  DATABASE_SECTION,
  durationFlag,
  type FlagSpec,
  logFormat,
  logLevel,
  parseFlags,
  UsageError,
} from "../args.ts";
import { delay } from "../async.ts";
import { connectDatabase, databaseUrl } from "../db/connect.ts";
import { readSites } from "../db/read_sites.ts";
import { readUptimeSummary } from "../db/read_uptime.ts";
import type { CommandDefinition, CommandHelp } from "../help.ts";
import { createLogger } from "../log.ts";
import { siteDetailJson, siteJson } from "./api.ts";
import { oneLine, siteDetail, statusTable, terminalJson } from "./status_table.ts";
import { loadSiteView } from "./views.ts";

const STATUS_OPTIONS = {
  site: {
    type: "string",
    env: "MONITOR_STATUS_SITE",
    arg: "NAME",
    description: "one site's detail: each location, incidents",
  },
  json: {
    type: "boolean",
    description: "JSON instead of a table (the shape of /api/sites and /api/sites/NAME)",
  },
  watch: {
    type: "boolean",
    description: "redraw every few seconds until Ctrl-C; the exit code is the last drawing's",
  },
  every: { type: "string", arg: "DUR", description: "how often --watch redraws, at least 1s", default: "5s" },
} as const satisfies Record<string, FlagSpec>;

const STATUS_FLAGS = { ...STATUS_OPTIONS, ...DATABASE_FLAGS, ...COMMON_FLAGS } as const;

/** Help of `monitor status`. */
export const STATUS_HELP: CommandHelp = {
  command: "monitor status",
  summary: "every site's state and uptime, in the terminal",
  about:
    "Prints a table of every site: state, since when, uptime over 24 hours and 30 days, p95 response time " +
    "over 24 hours, open incident; in colour on a terminal (unless NO_COLOR is set), plain when piped. Exits 0 " +
    "when every site is up, 1 when any is degraded, down or stale (or the database cannot be read), 2 on a " +
    "usage error. Logs only warnings unless --log-level says otherwise.",
  sections: [{ title: "OPTIONS", flags: STATUS_OPTIONS }, DATABASE_SECTION, COMMON_SECTION],
};

/** `monitor status` for the command table of `main.ts`. */
export const STATUS_COMMAND: CommandDefinition = {
  help: STATUS_HELP,
  flags: STATUS_FLAGS,
  run: statusCommand,
};

type Env = Readonly<Record<string, string | undefined>>;

/** The shortest `--every`: a redraw is a few queries, and a shorter wait is a busy loop on the database. */
const MIN_EVERY_MS = 1_000;

/** Reads `--every`, at least {@linkcode MIN_EVERY_MS}. */
export function everyFlag(value: string | undefined): number {
  const ms = durationFlag("every", value, 5_000);
  if (ms < MIN_EVERY_MS) {
    throw new UsageError(`Cannot use flag '--every': expected at least 1s: got '${value}'`);
  }
  return ms;
}

/** What one drawing printed and the exit code it implies. */
interface Drawing {
  readonly text: string;
  readonly code: number;
}

async function drawAll(sql: postgres.Sql, json: boolean, color: boolean): Promise<Drawing> {
  const page = await readSites(sql);
  const names = page.sites.map((site) => site.name);
  const uptime = await readUptimeSummary(sql, names.length > 200 ? null : names, page.now);
  const code = page.sites.every((site) => site.state === "up") ? 0 : 1;
  if (json) {
    const value = {
      generated_at: page.now.toISOString(),
      total: page.total,
      counts: page.counts,
      sites: page.sites.map((site) => siteJson(site, uptime.get(site.name))),
    };
    return { text: terminalJson(JSON.stringify(value, null, 2)) + "\n", code };
  }
  return { text: statusTable(page.sites, uptime, color), code };
}

async function drawSite(sql: postgres.Sql, name: string, json: boolean, color: boolean): Promise<Drawing> {
  const view = await loadSiteView(sql, name);
  if (view === null) throw new Error(`Cannot show site '${name}': there is no such site in the database`);
  const code = view.site.state === "up" ? 0 : 1;
  return {
    text: json ? terminalJson(JSON.stringify(siteDetailJson(view), null, 2)) + "\n" : siteDetail(view, color),
    code,
  };
}

/** Runs `monitor status`. */
export async function statusCommand(
  args: readonly string[],
  env: Env,
  shutdown: AbortSignal,
): Promise<number> {
  const flags = parseFlags(args, STATUS_FLAGS, env);
  // The table is the output: connection chatter stays out of it unless asked for.
  const log = createLogger({
    format: logFormat(flags["log-format"]),
    level: flags["log-level"] === undefined ? "warn" : logLevel(flags["log-level"]),
  });
  const url = databaseUrl(flags["database-url"]);
  const everyMs = everyFlag(flags.every);
  const terminal = Deno.stdout.isTerminal();
  const color = terminal && (env.NO_COLOR ?? "") === "";
  const sql = await connectDatabase({
    url,
    caFile: flags["database-ca"] ?? null,
    log,
    max: 4,
    connectTimeoutSeconds: 5,
    readOnly: true,
    applicationName: "monitor status",
  });
  const encoder = new TextEncoder();
  const draw = () =>
    flags.site === undefined ? drawAll(sql, flags.json, color) : drawSite(sql, flags.site, flags.json, color);
  try {
    if (!flags.watch) {
      const drawing = await draw();
      await Deno.stdout.write(encoder.encode(drawing.text));
      return drawing.code;
    }
    let code = 1;
    while (!shutdown.aborted) {
      let text: string;
      try {
        const drawing = await draw();
        code = drawing.code;
        text = drawing.text;
      } catch (error) {
        code = 1;
        const message = oneLine((error as Error).message);
        text = `Cannot read the database: ${message}; trying again in ${everyMs / 1000} s\n`;
      }
      const stamp = `monitor status, every ${everyMs / 1000} s (Ctrl-C to stop): ${
        new Date().toISOString()
      }\n\n`;
      // On a terminal, redraw in place; piped, append drawings one after another.
      await Deno.stdout.write(encoder.encode((terminal ? "\x1b[H\x1b[2J" : "") + stamp + text));
      // A shutdown ends the wait early; the loop condition then ends the loop.
      await delay(everyMs, { signal: shutdown }).catch(() => {});
    }
    return code;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
