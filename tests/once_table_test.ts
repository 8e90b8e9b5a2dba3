import { assertEquals } from "./_assert.ts";
import { formatOnceTable } from "../src/check/once_table.ts";
import type { CheckResult } from "../src/message.ts";

const base: CheckResult = {
  v: 1,
  id: "01936b2c-5d1e-7f3a-9b2c-1d2e3f4a5b6c",
  site: "home",
  url: "http://127.0.0.1/",
  agent: "a",
  region: null,
  scheduled_at: "2026-11-23T10:00:00.000Z",
  started_at: "2026-11-23T10:00:00.001Z",
  up: true,
  status: 200,
  ttfb_ms: 10,
  duration_ms: 12.34,
  bytes: 10,
  regex: null,
  regex_matched: null,
  cert_expires_at: null,
  error: null,
  interval_ms: 60_000,
};

Deno.test("formatOnceTable() aligns site, verdict, status, time and error, and counts up and down", () => {
  const table = formatOnceTable([
    base,
    {
      ...base,
      site: "checkout-api",
      up: false,
      status: null,
      duration_ms: 5000,
      error: { kind: "timeout", message: "Timed out after 5000 ms: no response headers yet" },
    },
  ]);
  assertEquals(
    table,
    [
      "SITE          UP    STATUS  TIME       ERROR",
      "home          up    200     12.3 ms",
      "checkout-api  DOWN  -       5000.0 ms  timeout: Timed out after 5000 ms: no response headers yet",
      "",
      "1 up, 1 down",
      "",
    ].join("\n"),
  );
});
