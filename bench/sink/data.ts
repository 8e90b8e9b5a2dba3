/**
 * The check results of the sink benchmark: a deterministic generator (the same index always gives the same
 * check, so the raw COPY can rebuild exactly the rows that were produced without holding a million of them),
 * the `checks` row of a check, and the topic fill, produced as the agent publishes (idempotent producer, acks
 * from all replicas, gzip, murmur2 on the site name as key).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { CompressionTypes, Partitioners } from "kafkajs";
import type { CheckResult, ErrorKind } from "../../src/message.ts";
import { plainKafka } from "../../dev/services.ts";

/** What every check of one run is made from. */
export interface CheckPlan {
  /** Distinct sites; check `i` is of site `i % sites`. */
  readonly sites: number;
  /** Every site is probed this often, so check `i` is of round `floor(i / sites)`. */
  readonly intervalMs: number;
  /** Unix milliseconds that the last round starts before. */
  readonly endMs: number;
  /** Total checks (fixes the first round's time). */
  readonly count: number;
  /** 32 random bits of this run, in every check id, so two runs never share an id. */
  readonly nonce: number;
  /** How down checks fall: see {@linkcode FailurePattern}. */
  readonly failures: FailurePattern;
}

/**
 * How the one check in five that is down falls. `independent`: each check is down at random, so every site flaps
 * between up and down all the time and opens an incident every few checks (the worst case for state and
 * incidents: about one incident per four checks). `outages`: each site is down for one run of a fifth of its
 * rounds at a time of its own, seen from every location (one incident per site in the run): how sites fail.
 */
export type FailurePattern = "independent" | "outages";

/** Reads a `--failures` value. */
export function failurePattern(text: string | undefined): FailurePattern {
  if (text === undefined || text === "independent" || text === "outages") return text ?? "independent";
  throw new TypeError(`Cannot parse '--failures': expected 'independent' or 'outages': got '${text}'`);
}

/** The agents (name, region) checks come from, in the order their ids are resolved. */
export const AGENTS: readonly { readonly name: string; readonly region: string }[] = [
  { name: "agent-eu-1", region: "eu-west-1" },
  { name: "agent-us-1", region: "us-east-1" },
  { name: "agent-ap-1", region: "ap-south-1" },
];

const REGEX = '"status":\\s*"ok"';

/** A new plan of `count` checks over `sites` sites, every site every 30 s, ending now. */
export function newPlan(count: number, sites: number, failures: FailurePattern = "independent"): CheckPlan {
  return {
    sites,
    intervalMs: 30_000,
    endMs: Date.now(),
    count,
    nonce: crypto.getRandomValues(new Uint32Array(1))[0]!,
    failures,
  };
}

/** The name of site `index`. */
export function siteName(index: number): string {
  return `site-${String(index).padStart(5, "0")}`;
}

/** The URL of site `index`: seven in ten are https. */
export function siteUrl(index: number): string {
  return index % 10 < 7
    ? `https://${siteName(index)}.example.com/health`
    : `http://${siteName(index)}.example.net/status?probe=monitor`;
}

/** A 32-bit mix of the inputs, for field values that look random but repeat exactly. */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

const hex8 = (value: number) => (value >>> 0).toString(16).padStart(8, "0");

/** A UUIDv7 of `millis`, with the run's nonce and the check's index in the random bits: unique, repeatable. */
function checkId(millis: number, nonce: number, index: number): string {
  const time = millis.toString(16).padStart(12, "0");
  const randA = (mix(nonce, index) & 0x0fff).toString(16).padStart(3, "0");
  const variant = (0x8000 | (nonce >>> 18)).toString(16);
  const tail = hex8(((nonce & 0x3ffff) << 14) | (index >>> 18)).slice(4) + hex8(index);
  return `${time.slice(0, 8)}-${time.slice(8)}-7${randA}-${variant}-${tail}`;
}

interface Failure {
  readonly kind: ErrorKind;
  readonly message: string;
  readonly status: number | null;
  /** Whether a response (and so ttfb and bytes) arrived. */
  readonly response: boolean;
  readonly durationMs: number;
}

const FAILURES: readonly Failure[] = [
  {
    kind: "timeout",
    message: "no response within 10000 ms",
    status: null,
    response: false,
    durationMs: 10_000,
  },
  {
    kind: "connect",
    message: "connection refused: tcp connect error: Connection refused (os error 111)",
    status: null,
    response: false,
    durationMs: 1.2,
  },
  { kind: "http", message: "status 503 is not in 200-399", status: 503, response: true, durationMs: 85.5 },
  {
    kind: "dns",
    message: "dns error: failed to lookup address information: Name or service not known",
    status: null,
    response: false,
    durationMs: 4.75,
  },
  {
    kind: "tls",
    message: "invalid peer certificate: Expired",
    status: null,
    response: false,
    durationMs: 31.25,
  },
];

/** Options of {@linkcode benchCheck}. */
export interface CheckTiming {
  /** When the probe started (Unix ms); default: from the plan's schedule. */
  readonly startedMs?: number;
  /** How long it took; default: a value from the check's index. */
  readonly durationMs?: number;
  /** Whether a failure may be a 10 s timeout (a long duration); default true. */
  readonly timeouts?: boolean;
}

/**
 * Check `index` of the plan: about one in five is down (timeout, refused connection, HTTP 503, DNS, TLS, or a
 * body that did not match), the rest up with varied timings and sizes; https sites carry a certificate expiry,
 * one site in four a body regex. The same index and plan always give the same check.
 */
export function benchCheck(plan: CheckPlan, index: number, timing: CheckTiming = {}): CheckResult {
  const site = index % plan.sites;
  const round = Math.floor(index / plan.sites);
  const rounds = Math.ceil(plan.count / plan.sites);
  const h = mix(plan.nonce, index);
  const https = site % 10 < 7;
  const regex = site % 4 === 0 ? REGEX : null;
  const down = plan.failures === "independent"
    ? h % 5 === 0
    : (round - mix(plan.nonce ^ 0x5bd1e995, site) % rounds + rounds) % rounds < Math.ceil(rounds / 5);
  const agent = AGENTS[(site + round) % AGENTS.length]!;
  let failure: Failure | null = null;
  let contentFailure = false;
  if (down) {
    const pick = (h >>> 8) % (FAILURES.length + (regex === null ? 0 : 1));
    if (pick === FAILURES.length) contentFailure = true;
    else failure = FAILURES[pick]!;
    if (failure?.kind === "timeout" && timing.timeouts === false) failure = FAILURES[1]!;
  }
  const ttfb = 18 + ((h >>> 4) % 2400) / 10;
  const upDuration = ttfb + 0.5 + ((h >>> 12) % 600) / 10;
  const durationMs = timing.durationMs ?? (failure === null ? upDuration : failure.durationMs);
  const startedMs = timing.startedMs ??
    plan.endMs - (rounds - round) * plan.intervalMs + ((site * 7_919) % plan.intervalMs);
  const scheduledMs = startedMs - ((h >>> 20) % 4);
  const response = failure === null || failure.response;
  const status = failure === null ? (h % 97 === 1 ? 204 : 200) : failure.status;
  // Keys in the order of the wire format, as an agent writes them.
  return {
    v: 1,
    id: checkId(startedMs, plan.nonce, index),
    site: siteName(site),
    url: siteUrl(site),
    agent: agent.name,
    region: agent.region,
    scheduled_at: new Date(scheduledMs).toISOString(),
    started_at: new Date(startedMs).toISOString(),
    up: !down,
    status,
    ttfb_ms: response ? Math.min(ttfb, durationMs) : null,
    duration_ms: durationMs,
    bytes: response ? 512 + ((h >>> 3) % 48_000) : null,
    regex,
    regex_matched: regex === null || !response ? null : !contentFailure,
    cert_expires_at: https ? new Date(Date.UTC(2027, site % 12, 1 + (site % 28), 12)).toISOString() : null,
    error: contentFailure
      ? { kind: "content", message: `body does not match /${REGEX}/` }
      : failure === null
      ? null
      : { kind: failure.kind, message: failure.message },
    interval_ms: plan.intervalMs,
  };
}

/** What {@linkcode fillTopic} did. */
export interface FillResult {
  readonly checks: number;
  readonly sends: number;
  readonly seconds: number;
  readonly checksPerSecond: number;
  /** Bytes of JSON values produced (before gzip). */
  readonly valueBytes: number;
}

/** The producer settings of the agent (src/check/publisher.ts). */
export function agentProducer(brokers: string) {
  return plainKafka(brokers).producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
}

/** Sends messages as the agent does: acks from all in-sync replicas, gzip, key = site name. */
export function sendChecks(
  producer: ReturnType<typeof agentProducer>,
  topic: string,
  checks: readonly CheckResult[],
): Promise<unknown> {
  return producer.send({
    topic,
    acks: -1,
    compression: CompressionTypes.GZIP,
    messages: checks.map((check) => ({ key: check.site, value: Buffer.from(JSON.stringify(check)) })),
  });
}

/**
 * Produces checks 0 to `plan.count - 1` to `topic` in sends of `batchSize`, one at a time (the agent's
 * producer keeps one request in flight). Gives up after `timeoutMs`.
 */
export async function fillTopic(
  brokers: string,
  topic: string,
  plan: CheckPlan,
  batchSize = 5_000,
  timeoutMs = 240_000,
): Promise<FillResult> {
  const producer = agentProducer(brokers);
  await producer.connect();
  let valueBytes = 0;
  let sends = 0;
  const started = performance.now();
  try {
    for (let first = 0; first < plan.count; first += batchSize) {
      if (performance.now() - started > timeoutMs) {
        throw new Error(
          `Cannot fill topic '${topic}': ${first} of ${plan.count} produced in ${timeoutMs} ms`,
        );
      }
      const checks: CheckResult[] = [];
      for (let i = first; i < Math.min(plan.count, first + batchSize); i++) checks.push(benchCheck(plan, i));
      const messages = checks.map((check) => {
        const value = Buffer.from(JSON.stringify(check));
        valueBytes += value.byteLength;
        return { key: check.site, value };
      });
      await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
      sends++;
    }
  } finally {
    await producer.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;
  return { checks: plan.count, sends, seconds, checksPerSecond: plan.count / seconds, valueBytes };
}
