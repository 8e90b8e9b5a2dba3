/**
 * A site as the agent's probe takes it, for the probe tests: plain GET defaults, any field overridden.
 *
 * @module
 */
import type { Site } from "../src/check/site.ts";

/** A GET of `url` every minute, 2 s timeout, 200-399 expected, no pattern, 1 MiB of body; then `overrides`. */
export function makeSite(url: string, overrides: Partial<Site> = {}): Site {
  return {
    name: "test",
    url,
    shownUrl: url,
    intervalMs: 60_000,
    timeoutMs: 2000,
    method: "GET",
    headers: {},
    body: null,
    expectStatus: [{ min: 200, max: 399 }],
    regex: null,
    followRedirects: true,
    maxBodyBytes: 1024 * 1024,
    ...overrides,
  };
}
