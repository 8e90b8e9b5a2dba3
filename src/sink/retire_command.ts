/**
 * `monitor retire`: removes a site that is no longer probed from the current state, keeping its history.
 *
 * @module
 */
import {
  COMMON_FLAGS,
  COMMON_SECTION,
  ConfigError,
  DATABASE_FLAGS,
  DATABASE_SECTION,
  logOptions,
  parseFlags,
  UsageError,
} from "../args.ts";
import type { CommandDefinition, CommandHelp } from "../help.ts";
import { connectDatabase, databaseUrl } from "../db/connect.ts";
import { retireSite } from "../db/retire.ts";
import { createLogger } from "../log.ts";
import { describeError } from "../db/retry.ts";

const RETIRE_FLAGS = {
  site: {
    type: "string",
    env: "MONITOR_RETIRE_SITE",
    arg: "NAME",
    description: "the site to retire (required)",
  },
  ...DATABASE_FLAGS,
  ...COMMON_FLAGS,
} as const;

/** Help of `monitor retire`. */
export const RETIRE_HELP: CommandHelp = {
  command: "monitor retire",
  summary: "remove a site no longer probed from the status page, keeping its history",
  about: "Closes the site's open incident and removes its current state, so the status page, " +
    "'monitor status' and /metrics stop showing it; its checks, rollups and incidents stay for reports. " +
    "Remove it from every agent's sites file first: a check of it that arrives later brings it back.",
  sections: [{ title: "OPTIONS", flags: { site: RETIRE_FLAGS.site } }, DATABASE_SECTION, COMMON_SECTION],
};

/** `monitor retire` for the command table of `main.ts`. */
export const RETIRE_COMMAND: CommandDefinition = {
  help: RETIRE_HELP,
  flags: RETIRE_FLAGS,
  run: retireCommand,
};

type Env = Readonly<Record<string, string | undefined>>;

/** Runs `monitor retire`. */
export async function retireCommand(args: readonly string[], env: Env): Promise<number> {
  const flags = parseFlags(args, RETIRE_FLAGS, env);
  const site = flags.site;
  if (site === undefined || site === "") {
    throw new UsageError("Cannot retire a site: flag '--site' (or MONITOR_RETIRE_SITE) is required");
  }
  const log = createLogger(logOptions(flags));
  const sql = await connectDatabase({
    url: databaseUrl(flags["database-url"]),
    caFile: flags["database-ca"] ?? null,
    log,
    connectTimeoutSeconds: 5,
  });
  try {
    let retired;
    try {
      retired = await retireSite(sql, site);
    } catch (error) {
      throw new Error(`Cannot retire site '${site}': ${describeError(error)}`, { cause: error });
    }
    if (retired === null) {
      throw new ConfigError(`Cannot retire site '${site}': the database has no site of that name`);
    }
    log.info(retired.locations === 0 ? "site had no current state; nothing to retire" : "site retired", {
      site,
      locations: retired.locations,
      closed_incident: retired.closedIncident,
    });
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
