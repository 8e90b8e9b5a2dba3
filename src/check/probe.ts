/**
 * One probe of one site: a request on a fresh connection, redirects followed by hand, the body read up to
 * a limit and matched against the site's pattern, all within the site's deadline. The outcome is a
 * {@linkcode CheckResult} value; network and HTTP failures never throw.
 *
 * @module
 */
import { abortable } from "../async.ts";
import type { CertificateCache } from "./certificates.ts";
import { newCheckId } from "../check_id.ts";
import { isoTimestamp } from "../iso_timestamp.ts";
import type { CheckError, CheckResult } from "../message.ts";
import { classifyFetchError, type ProbePhase } from "./probe_errors.ts";
import { matchPattern, type PatternMatch } from "./regex.ts";
import { MAIN_THREAD_COST, patternCost, type PatternWorkers } from "./pattern_workers.ts";
import { isExpectedStatus, type Site } from "./site.ts";
import { VERSION } from "../version.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";

/** What a probe needs besides the site: who probes, when it was due, and the shared resources. */
export interface ProbeContext {
  /** Agent name, copied into the result. */
  readonly agent: string;
  /** Free label of where the agent runs, copied into the result. */
  readonly region: string | null;
  /** When the probe was due, in epoch milliseconds. */
  readonly scheduledAt: number;
  /** Made with {@linkcode createProbeClient}, so every probe pays for its own connect and TLS handshake. */
  readonly client: Deno.HttpClient;
  /** Certificate expiry dates, refreshed in the background. */
  readonly certificates: CertificateCache;
  /** Aborted on shutdown. The probe's own deadline is `site.timeoutMs`. */
  readonly signal?: AbortSignal;
  /** Where a pattern match that could take long runs; without it, every match runs on this thread. */
  readonly patterns?: PatternWorkers;
}

/** The most redirects one probe follows. */
export const MAX_REDIRECTS = 10;

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
// Headers that describe a request body, dropped when a redirect turns the request into a GET (Fetch standard).
const BODY_HEADERS = [
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "content-location",
];
// Headers that must not leak to another origin on a redirect (as browsers do).
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

/**
 * Makes the HTTP client probes share. It keeps no idle connection, so each probe opens its own and the
 * connect and TLS time count in the measured times.
 *
 * @example
 * ```ts
 * const client = createProbeClient();
 * // … probes …
 * client.close();
 * ```
 */
export function createProbeClient(): Deno.HttpClient {
  return Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
}

// decode() without { stream: true } keeps no state between calls, so every probe can share one.
const BODY_DECODER = new TextDecoder();

/** What the probe learnt so far; everything measured relative to the start of the first request. */
class Progress {
  status: number | null = null;
  ttfbMs: number | null = null;
  bytes: number | null = null;
  regexMatched: boolean | null = null;
  error: CheckError | null = null;

  constructor(private readonly start: number) {}

  /** Milliseconds since the start, to the microsecond. */
  elapsed(): number {
    return Math.round((performance.now() - this.start) * 1000) / 1000;
  }
}

/** What a probe of a site needs that does not change between its probes, worked out once. */
interface Plan {
  /** The site's URL. URL objects are mutable: nothing may change it. */
  readonly url: URL;
  /** Its text: fetch takes a string for less work than a URL object. */
  readonly href: string;
  /** Whether a certificate expiry applies (https). */
  readonly https: boolean;
  /**
   * The request headers (the site's, and the default User-Agent unless it sets one) as a frozen record, or
   * null when they cannot be built (a value fetch rejects): then every probe builds them, and fails.
   */
  readonly headers: Readonly<Record<string, string>> | null;
}

// URL parsing, header building and the certificate lookup showed up in profiles at thousands of probes a
// second: they are done once per site.
const PLANS = new WeakMap<Site, Plan>();
function planOf(site: Site): Plan {
  let plan = PLANS.get(site);
  if (plan === undefined) {
    const url = new URL(site.url);
    let headers: Readonly<Record<string, string>> | null = DEFAULT_HEADERS;
    if (Object.keys(site.headers).length > 0) {
      try {
        headers = Object.freeze(Object.fromEntries(requestHeaders(site)));
      } catch {
        headers = null;
      }
    }
    PLANS.set(site, plan = { url, href: url.href, https: url.protocol === "https:", headers });
  }
  return plan;
}

/** The headers of a site that sets none. */
const DEFAULT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "user-agent": `monitor/${VERSION}`,
});

/** The headers of a site's first request; throws a TypeError for a value fetch would reject. */
function requestHeaders(site: Site): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(site.headers)) headers.set(name, value);
  if (!headers.has("user-agent")) headers.set("user-agent", `monitor/${VERSION}`);
  return headers;
}

// One shared timer for every probe's deadline, instead of one timer per probe.
const DEADLINES = new Deadlines();

/**
 * Probes `site` once and returns the full wire message. Resolves for every DNS, connect, TLS, timeout,
 * HTTP, content and redirect failure (as `error`); only a bug rejects.
 *
 * @example
 * ```ts
 * import { CertificateCache } from "./certificates.ts";
 * import type { Site } from "./site.ts";
 * declare const site: Site;
 * const client = createProbeClient();
 * const certificates = new CertificateCache();
 * const result = await probe(site, { agent: "eu-1", region: null, scheduledAt: Date.now(), client, certificates });
 * if (!result.up) console.log(result.error?.kind, result.error?.message);
 * ```
 */
export async function probe(site: Site, context: ProbeContext): Promise<CheckResult> {
  const plan = planOf(site);
  // Asking early starts a refresh that may finish before this probe does.
  if (plan.https) context.certificates.expiryFor(plan.url);
  // One signal for both ends of a probe: its deadline, and the agent stopping (context.signal).
  const deadline = DEADLINES.start(site.timeoutMs, context.signal);
  const startedAt = Date.now();
  const progress = new Progress(performance.now());
  try {
    await run(site, plan, context, progress, deadline);
  } finally {
    deadline.cancel();
  }
  const durationMs = progress.elapsed();
  return {
    v: 1,
    id: newCheckId(startedAt),
    site: site.name,
    url: site.shownUrl,
    agent: context.agent,
    region: context.region,
    scheduled_at: isoTimestamp(context.scheduledAt),
    started_at: isoTimestamp(startedAt),
    up: progress.error === null,
    status: progress.status,
    ttfb_ms: progress.ttfbMs,
    duration_ms: durationMs,
    bytes: progress.bytes,
    regex: site.regex?.source ?? null,
    regex_matched: progress.regexMatched,
    cert_expires_at: plan.https ? context.certificates.expiryFor(plan.url) : null,
    error: progress.error,
    interval_ms: site.intervalMs,
  };
}

/** The error an abort explains (timeout or shutdown), or null when the deadline's signal is not aborted. */
function explainAbort(
  site: Site,
  phase: ProbePhase,
  progress: Progress,
  deadline: Deadline,
): CheckError | null {
  if (!deadline.signal.aborted) return null;
  if (deadline.timedOut) return timeoutError(site, phase, progress);
  return { kind: "other", message: "Probe cancelled: the agent is stopping" };
}

async function run(
  site: Site,
  plan: Plan,
  { client, patterns }: Pick<ProbeContext, "client" | "patterns">,
  progress: Progress,
  deadline: Deadline,
): Promise<void> {
  const signal = deadline.signal;
  let url = plan.url;
  let method = site.method;
  let body = site.body;
  // The site's frozen headers until a redirect has to change them.
  let headers: HeadersInit | null = plan.headers;
  let seen: Set<string> | null = null;
  let response: Response;
  for (let hops = 0;; hops++) {
    progress.status = null;
    progress.ttfbMs = null;
    try {
      // Inside the try: a header value fetch rejects is a failed probe, not a crashed agent.
      headers ??= requestHeaders(site);
      const target = hops === 0 ? plan.href : url;
      response = await fetch(target, { method, headers, body, client, redirect: "manual", signal });
    } catch (error) {
      progress.error = explainAbort(site, "request", progress, deadline) ??
        classifyFetchError(error, url, "request");
      return;
    }
    progress.ttfbMs = progress.elapsed();
    if (response.status < 100 || response.status > 599) {
      // Not an HTTP status (RFC 9110 defines 100-599), and not one the results' format can carry.
      await response.body?.cancel().catch(() => {});
      progress.error = { kind: "http", message: `Status ${response.status} is not an HTTP status (100-599)` };
      return;
    }
    progress.status = response.status;
    const location = response.headers.get("location");
    if (!site.followRedirects || !REDIRECT_STATUSES.has(response.status) || location === null) break;
    await response.body?.cancel().catch(() => {});
    const next = URL.parse(location, url);
    if (next === null || (next.protocol !== "http:" && next.protocol !== "https:")) {
      const what = next === null ? "an invalid Location" : `a Location with scheme '${next.protocol}'`;
      progress.error = { kind: "redirects", message: `Cannot follow redirect ${hops + 1}: it has ${what}` };
      return;
    }
    seen ??= new Set([url.href]);
    if (seen.has(next.href)) {
      progress.error = {
        kind: "redirects",
        message: `Redirect loop: redirect ${hops + 1} leads to a URL seen before`,
      };
      return;
    }
    if (hops + 1 > MAX_REDIRECTS) {
      progress.error = { kind: "redirects", message: `Too many redirects: more than ${MAX_REDIRECTS}` };
      return;
    }
    seen.add(next.href);
    const status = response.status;
    const changed: Headers = headers instanceof Headers ? headers : new Headers(headers);
    if ((status === 303 && method !== "HEAD") || ((status === 301 || status === 302) && method === "POST")) {
      method = "GET";
      body = null;
      for (const name of BODY_HEADERS) changed.delete(name);
    }
    if (next.origin !== url.origin) { for (const name of CREDENTIAL_HEADERS) changed.delete(name); }
    headers = changed;
    url = next;
  }

  const read = await readBody(response, site.maxBodyBytes, signal);
  progress.bytes = read.bytes;
  if (read.error !== undefined) {
    progress.error = explainAbort(site, "body", progress, deadline) ??
      classifyFetchError(read.error, url, "body");
    return;
  }
  if (!isExpectedStatus(site, response.status)) {
    progress.error = { kind: "http", message: `Status ${response.status} is not in ${describeRanges(site)}` };
  }
  if (site.regex !== null) {
    const found = await matchBody(site.regex, read.data, patterns, site.timeoutMs - progress.elapsed());
    progress.regexMatched = found?.matched ?? null;
    // A match cannot be interrupted (nor can the deadline's timer fire during it), so the clock decides: one
    // that ends past the deadline (or a worker's that did not end in time) fails this site, and only it.
    const late = found === null || progress.elapsed() > site.timeoutMs;
    if (found?.error !== undefined || late) {
      const why = found?.error ?? `it ran past the ${site.timeoutMs} ms timeout`;
      progress.error = {
        kind: "content",
        message: `Pattern ${describePattern(site.regex)} took too long on ${read.bytes} bytes: ${why}`,
      };
    } else if (!progress.regexMatched && progress.error === null) {
      const where = read.capped ? ` in its first ${read.bytes} bytes` : "";
      progress.error = {
        kind: "content",
        message: `Body does not match ${describePattern(site.regex)}${where}`,
      };
    }
  }
  // The deadline's timer cannot fire while the thread is busy (a large body inflated, another site's match):
  // a probe that ends past its timeout is a timeout, whatever it read.
  const elapsed = progress.elapsed();
  if (progress.error === null && elapsed > site.timeoutMs) {
    progress.error = {
      kind: "timeout",
      message: `Timed out after ${site.timeoutMs} ms: the response took ${Math.round(elapsed)} ms`,
    };
  }
}

/**
 * Matches the body here, or in a worker when the match could take long (./pattern_workers.ts); null when the
 * worker's match did not end within `remainingMs`.
 */
function matchBody(
  regex: RegExp,
  body: Uint8Array,
  patterns: PatternWorkers | undefined,
  remainingMs: number,
): PatternMatch | Promise<PatternMatch | null> | null {
  if (patterns === undefined || patternCost(regex, body.byteLength) <= MAIN_THREAD_COST) {
    return matchPattern(regex, BODY_DECODER.decode(body));
  }
  return remainingMs > 0 ? patterns.match(regex, body, remainingMs) : null;
}

interface BodyRead {
  /** Bytes read (at most the limit). */
  readonly bytes: number;
  /** What was read, when the read completed or reached the limit. */
  readonly data: Uint8Array;
  /** Whether reading stopped at the limit, with more to come. */
  readonly capped: boolean;
  /** Why reading failed, if it did. */
  readonly error?: unknown;
}

/** Reads the body chunk by chunk, keeping at most `limit` bytes, and cancels the stream there. */
// Bodies up to this size, announced by Content-Length, are read in one call: Deno's stream reader hands every
// read a fresh 64 KiB buffer, which at thousands of probes a second costs more memory and time than the
// probe itself. Larger or unannounced bodies are streamed, so reading stops at the limit.
const WHOLE_BODY_MAX = 64 * 1024;

async function readBody(response: Response, limit: number, signal: AbortSignal): Promise<BodyRead> {
  const stream = response.body;
  if (stream === null) return { bytes: 0, data: new Uint8Array(0), capped: false };
  const announced = Number(response.headers.get("content-length") ?? NaN);
  // A compressed body's Content-Length is its compressed size: a few hundred bytes of brotli can hold a
  // gigabyte, which a read in one call would inflate whole, past the limit and the deadline.
  const encoding = response.headers.get("content-encoding");
  const plain = encoding === null || encoding.trim().toLowerCase() === "identity";
  if (plain && announced <= Math.min(limit, WHOLE_BODY_MAX)) {
    try {
      // No abortable() here: the Fetch standard errors the body of a response whose request signal aborts.
      const data = await response.bytes();
      const capped = data.byteLength > limit;
      return {
        bytes: capped ? limit : data.byteLength,
        data: capped ? data.subarray(0, limit) : data,
        capped,
      };
    } catch (error) {
      return { bytes: 0, data: new Uint8Array(0), capped: false, error };
    }
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let capped = false;
  try {
    while (true) {
      const { done, value } = await abortable(reader.read(), signal);
      if (done) break;
      const room = limit - bytes;
      const part = value.byteLength > room ? value.subarray(0, room) : value;
      if (part.byteLength > 0) chunks.push(part);
      bytes += part.byteLength;
      if (value.byteLength >= room) {
        capped = true;
        break;
      }
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    return { bytes, data: new Uint8Array(0), capped, error };
  }
  // Also ends a body that ended exactly at the limit; cancelling a finished stream is a no-op.
  await reader.cancel().catch(() => {});
  const data = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes, data, capped };
}

function timeoutError(site: Site, phase: ProbePhase, progress: Progress): CheckError {
  const what = phase === "request"
    ? "no response headers yet"
    : `reading the body, ${progress.bytes ?? 0} bytes read`;
  return { kind: "timeout", message: `Timed out after ${site.timeoutMs} ms: ${what}` };
}

function describeRanges(site: Site): string {
  return site.expectStatus.map(({ min, max }) => min === max ? `${min}` : `${min}-${max}`).join(", ");
}

function describePattern(regex: RegExp): string {
  const text = `/${regex.source}/${regex.flags}`;
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}
