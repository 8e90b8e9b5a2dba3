/**
 * Check results for sink tests: valid wire messages made to order, and a producer that puts raw values on a
 * topic (so tests can mix in poison).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { CompressionTypes, Partitioners } from "kafkajs";
import { newCheckId } from "../src/check_id.ts";
import type { CheckResult } from "../src/message.ts";
import { BROKER, plainKafka } from "./_kafka.ts";

/** A valid check result of `site`, started `startedAt`; fields can be overridden. */
export function makeCheck(site: string, startedAt: Date, overrides: Partial<CheckResult> = {}): CheckResult {
  const up = overrides.up ?? true;
  return {
    v: 1,
    id: newCheckId(startedAt.getTime()),
    site,
    url: `http://127.0.0.1:8080/${site}`,
    agent: "test-agent",
    region: "test-region",
    scheduled_at: new Date(startedAt.getTime() - 1).toISOString(),
    started_at: startedAt.toISOString(),
    up,
    status: up ? 200 : 500,
    ttfb_ms: 10.5,
    duration_ms: 12.25,
    bytes: 42,
    regex: null,
    regex_matched: null,
    cert_expires_at: null,
    error: up ? null : { kind: "http", message: "Status 500 is not in 200-399" },
    interval_ms: 60_000,
    ...overrides,
  };
}

/** A message to produce: the key and the raw value. */
export interface RawMessage {
  readonly key: string | null;
  readonly value: string | Uint8Array | null;
}

/** Produces messages in order (in chunks), with the agent's settings: idempotent, gzip, murmur2 by key. */
export async function produce(
  topic: string,
  messages: readonly RawMessage[],
  brokers = BROKER,
): Promise<void> {
  const producer = plainKafka(brokers).producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 5_000) {
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: messages.slice(i, i + 5_000).map((m) => ({
          key: m.key,
          value: m.value === null ? null : typeof m.value === "string" ? m.value : Buffer.from(m.value),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Produces check results, keyed by site. */
export function produceChecks(
  topic: string,
  checks: readonly CheckResult[],
  brokers = BROKER,
): Promise<void> {
  return produce(topic, checks.map((check) => ({ key: check.site, value: JSON.stringify(check) })), brokers);
}

/** `count` checks spread over `sites` sites, one per second each, ending now. */
export function manyChecks(count: number, sites = 50): CheckResult[] {
  const end = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const site = `site-${i % sites}`;
    return makeCheck(site, new Date(end - (count - i) * 20), { up: i % 7 !== 0 });
  });
}
