/**
 * `monitor check`: the probing agent. Probes every site of a sites file on its own schedule and publishes
 * each result to Kafka through a bounded outbox, or prints NDJSON when no brokers are configured.
 *
 * @module
 */
import {
  COMMON_FLAGS,
  COMMON_SECTION,
  ConfigError,
  durationFlag,
  type FlagSpec,
  KAFKA_FLAGS,
  KAFKA_SECTION,
  logOptions,
  parseFlags,
  positiveInteger,
  runningFlags,
  UsageError,
} from "../args.ts";
import type { CommandDefinition, CommandHelp } from "../help.ts";
import { formatSites, loadSites, nameProblem } from "./config.ts";
import { describeKafka, type KafkaSettings, kafkaSettings } from "../kafka.ts";
import { createLogger } from "../log.ts";
import { LINEAR_ENGINE_FLAGS, linearEngineEnabled } from "./regex.ts";
import type { Site } from "./site.ts";
import { runOnce } from "./once.ts";
import { runForever } from "./run.ts";

const CHECK_OPTIONS = {
  sites: {
    type: "string",
    env: "MONITOR_SITES",
    arg: "FILE",
    description: "sites file",
    default: "sites.toml",
  },
  once: {
    type: "boolean",
    description: "probe every site once, print the results, exit 0 if all are up, 1 otherwise",
  },
  json: { type: "boolean", description: "with --once: print NDJSON even on a terminal" },
  "dry-run": { type: "boolean", description: "print the resolved sites and the Kafka target, then exit" },
  agent: {
    type: "string",
    env: "MONITOR_AGENT",
    arg: "NAME",
    description: "agent name in every result",
    default: "the host name",
  },
  region: {
    type: "string",
    env: "MONITOR_REGION",
    arg: "LABEL",
    description: "region label in every result",
  },
  concurrency: {
    type: "string",
    env: "MONITOR_CONCURRENCY",
    arg: "N",
    description: "most probes in flight at once",
    default: "500",
  },
  outbox: {
    type: "string",
    env: "MONITOR_OUTBOX",
    arg: "N",
    description: "results held while Kafka is unreachable; past it the oldest are dropped",
    default: "100000",
  },
  "create-topic": {
    type: "boolean",
    env: "MONITOR_CREATE_TOPIC",
    description: "create the topic if it is missing",
  },
  partitions: {
    type: "string",
    env: "MONITOR_PARTITIONS",
    arg: "N",
    description: "partitions of a topic made by --create-topic",
    default: "6",
  },
  ...runningFlags(":9464"),
  "drain-timeout": {
    type: "string",
    env: "MONITOR_DRAIN_TIMEOUT",
    arg: "DUR",
    description:
      "on SIGINT/SIGTERM, how long to wait for probes and publishing; results still undelivered then " +
      "make the exit code 1",
    default: "15s",
  },
} as const satisfies Record<string, FlagSpec>;

const CHECK_FLAGS = { ...CHECK_OPTIONS, ...KAFKA_FLAGS, ...COMMON_FLAGS } as const;

/** Help of `monitor check`. */
export const CHECK_HELP: CommandHelp = {
  command: "monitor check",
  summary: "probe the sites of a sites file and publish every result to Kafka",
  sections: [
    { title: "OPTIONS", flags: CHECK_OPTIONS },
    { ...KAFKA_SECTION, title: "KAFKA (without --brokers, results go to stdout as NDJSON)" },
    COMMON_SECTION,
  ],
};

/** `monitor check` for the command table of `main.ts`. */
export const CHECK_COMMAND: CommandDefinition = {
  help: CHECK_HELP,
  flags: CHECK_FLAGS,
  run: (args, env, shutdown) => checkCommand(args, env, shutdown),
};

/** Where `check` writes results and text meant for the user. */
export interface Output {
  readonly write: (text: string) => void;
  readonly isTerminal: boolean;
}

const encoder = new TextEncoder();

/** Standard output. */
export const stdoutOutput: Output = {
  write: (text) => {
    const bytes = encoder.encode(text);
    let written = 0;
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
  },
  isTerminal: Deno.stdout.isTerminal(),
};

/** The options of `monitor check`, parsed and validated. */
export interface CheckConfig {
  readonly sites: readonly Site[];
  readonly agent: string;
  readonly region: string | null;
  readonly concurrency: number;
  readonly outboxSize: number;
  readonly createTopic: boolean;
  readonly partitions: number;
  readonly summaryEveryMs: number;
  readonly drainTimeoutMs: number;
  readonly metrics: string | null;
  readonly kafka: KafkaSettings | null;
}

/**
 * Runs `monitor check` with its arguments (after the subcommand) until `shutdown` aborts.
 * Returns the exit code; throws `UsageError` or `ConfigError` for bad input (exit 2).
 */
export async function checkCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  shutdown: AbortSignal,
  output: Output = stdoutOutput,
): Promise<number> {
  const flags = parseFlags(args, CHECK_FLAGS, env);
  const log = createLogger(logOptions(flags));
  const sitesFile = flags.sites ?? "sites.toml";
  const sites = await loadSites(sitesFile, env, shutdown);
  const patterned = sites.find((site) => site.regex !== null);
  if (patterned !== undefined && !linearEngineEnabled()) {
    throw new ConfigError(
      `${sitesFile}: Cannot bound the regex of site '${patterned.name}': V8's linear-time regex engine is ` +
        `off; run deno with --v8-flags=${LINEAR_ENGINE_FLAGS} (deno task dev and dist/monitor do)`,
    );
  }
  const agent = nameFlag("agent", flags.agent ?? Deno.hostname());
  const config: CheckConfig = {
    sites,
    agent,
    region: flags.region === undefined ? null : nameFlag("region", flags.region),
    concurrency: positiveInteger("concurrency", flags.concurrency, 500),
    outboxSize: positiveInteger("outbox", flags.outbox, 100_000),
    createTopic: flags["create-topic"],
    partitions: positiveInteger("partitions", flags.partitions, 6),
    summaryEveryMs: durationFlag("summary-every", flags["summary-every"], 60_000),
    drainTimeoutMs: durationFlag("drain-timeout", flags["drain-timeout"], 15_000),
    metrics: flags.metrics ?? null,
    kafka: await kafkaSettings(flags, env, `monitor-check-${agent}`),
  };
  if (flags["dry-run"]) {
    output.write(formatSites(sites));
    output.write(`\nagent: ${agent}${config.region ? ` (region ${config.region})` : ""}\n`);
    output.write(`publish to: ${config.kafka ? describeKafka(config.kafka) : "stdout (NDJSON)"}\n`);
    return 0;
  }
  if (flags.once) return await runOnce(config, log, output, flags.json || !output.isTerminal, shutdown);
  return await runForever(config, log, output, shutdown);
}

/** The agent's or the region's name, as every result carries it: the sink refuses what names must not be. */
function nameFlag(flag: "agent" | "region", value: string): string {
  const problem = nameProblem(value);
  if (problem !== null) throw new UsageError(`Cannot use flag '--${flag}': it ${problem}`);
  return value;
}
