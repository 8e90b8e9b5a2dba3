/**
 * One probe of one site: a request on a fresh connection, redirects followed by hand, the body read up to
 * a limit and matched against the site's pattern, all within the site's deadline. The outcome is a
 * {@linkcode CheckResult} value; network and HTTP failures never throw. The body is read and matched by
 * `_probe_body.ts`; what stays the same between a site's probes is worked out once by `_probe_plan.ts`.
 *
 * @module
 */
import type { CertificateCache } from "./certificates.ts";
import { newCheckId } from "../check_id.ts";
import { isoTimestamp } from "../iso_timestamp.ts";
import type { CheckError, CheckResult } from "../message.ts";
import { boundedError } from "./_error_text.ts";
import { clip } from "../clip.ts";
import { classifyFetchError, type ProbePhase } from "./probe_errors.ts";
import type { PatternWorkers } from "./pattern_workers.ts";
import { isExpectedStatus, type Site } from "./site.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";
import { matchBody, readBody } from "./_probe_body.ts";
import { type Plan, planOf, requestHeaders } from "./_probe_plan.ts";

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
    error: progress.error === null ? null : boundedError(progress.error),
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
      const what = next === null
        ? "an invalid Location"
        : `a Location with scheme '${clip(next.protocol, 40)}'`;
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
  if (site.regex !== null && !read.present) {
    // Nothing to match (a 204, a 304): the pattern cannot be found, and regex_matched is null on the wire.
    progress.error ??= {
      kind: "content",
      message: `Body does not match ${describePattern(site.regex)}: the response has no body`,
    };
  } else if (site.regex !== null) {
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
  return clip(`/${regex.source}/${regex.flags}`, 100);
}
