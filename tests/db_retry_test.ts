import { assertEquals, assertRejects } from "./_assert.ts";
import { describeError, isTransient, retrying } from "../src/db/retry.ts";
import { createLogger, silentLogger } from "../src/log.ts";

const coded = (code: string, message = "x") => Object.assign(new Error(message), { code });

Deno.test("isTransient(): connection trouble, server shutdowns, overload and conflicts are worth waiting out", () => {
  const transient = [
    "08000", // connection_exception
    "08006", // connection_failure
    "57P01", // admin_shutdown
    "57P03", // cannot_connect_now (starting up)
    "53300", // too_many_connections
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "55P03", // lock_not_available (lock_timeout)
    "57014", // query_canceled (statement_timeout, pg_cancel_backend)
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "CONNECT_TIMEOUT",
    "CLIENT_DEADLINE",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EPIPE",
  ];
  assertEquals(transient.filter((code) => !isTransient(coded(code))), []);
});

Deno.test("isTransient(): data, schema and permission errors stop the sink", () => {
  const permanent = [
    "42501", // insufficient_privilege
    "42P01", // undefined_table
    "23505", // unique_violation
    "22P02", // invalid_text_representation
    "28P01", // invalid_password
    "53100", // disk_full: needs an operator, not a retry
    "ENOTFOUND",
    "ERR_TLS_CERT_ALTNAME_INVALID",
  ];
  assertEquals(permanent.filter((code) => isTransient(coded(code))), []);
});

Deno.test("isTransient(): an error without a string code counts as transient", () => {
  assertEquals(isTransient(new Error("socket hang up")), true);
  assertEquals(isTransient(Object.assign(new Error("x"), { code: 42 })), true);
});

Deno.test("describeError() adds the code unless the message has it already", () => {
  assertEquals(
    describeError(coded("42501", "permission denied for table checks")),
    "permission denied for table checks (42501)",
  );
  assertEquals(
    describeError(coded("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432")),
    "connect ECONNREFUSED 127.0.0.1:5432",
  );
  assertEquals(describeError(new Error("plain")), "plain");
  assertEquals(describeError("a string"), "a string");
});

Deno.test("retrying() retries transient errors, logging each, and returns the result", async () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", write: (line) => lines.push(line) });
  let calls = 0;
  const result = await retrying(log, new AbortController().signal, "store a batch", () => {
    calls++;
    return calls < 2
      ? Promise.reject(coded("57P03", "the database system is starting up"))
      : Promise.resolve("ok");
  });
  assertEquals([result, calls], ["ok", 2]);
  const warned = lines.map((line) => JSON.parse(line));
  assertEquals(warned.map(({ level, message, error }) => ({ level, message, error })), [
    {
      level: "warn",
      message: "cannot store a batch; will retry",
      error: "the database system is starting up",
    },
  ]);
  const wait = warned[0].retry_in_ms;
  assertEquals(wait >= 250 && wait <= 500, true, `first wait ${wait} ms`);
});

Deno.test("retrying() ends at once with a permanent error, naming the action", async () => {
  let calls = 0;
  const error = await assertRejects(
    () =>
      retrying(silentLogger, new AbortController().signal, "apply migrations", () => {
        calls++;
        return Promise.reject(coded("42501", "permission denied for schema public"));
      }),
    Error,
    "Cannot apply migrations: permission denied for schema public (42501)",
  );
  assertEquals(calls, 1);
  assertEquals((error.cause as { code: string }).code, "42501");
});

Deno.test("retrying() returns undefined when shut down while waiting", async () => {
  const shutdown = new AbortController();
  let calls = 0;
  const result = await retrying(silentLogger, shutdown.signal, "connect", () => {
    calls++;
    shutdown.abort();
    return Promise.reject(coded("ECONNREFUSED"));
  });
  assertEquals([result, calls], [undefined, 1]);
});
