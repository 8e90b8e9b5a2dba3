import { assertEquals } from "./_assert.ts";
import { DeadlineError } from "../src/db/handle.ts";
import { databaseUnavailable, MIGRATE_ADVICE } from "../src/serve/unavailable.ts";

const withCode = (code: string, message = "refused") => Object.assign(new Error(message), { code });

Deno.test("databaseUnavailable() gives a 503 for a database away, refusing, overloaded or too slow", () => {
  const codes = [
    "55000", // not accepting connections
    "57P03", // starting up
    "57P01", // shutting down
    "28000", // no such role
    "28P01", // wrong password
    "3D000", // no such database
    "53300", // too many connections
    "53100", // disk full
    "57014", // statement_timeout
    "55P03", // lock_timeout
    "08006", // connection failure
    "40P01", // deadlock
    "ECONNREFUSED",
    "CONNECTION_DESTROYED",
  ];
  for (const code of codes) {
    assertEquals(databaseUnavailable(withCode(code)), {
      message: `Cannot read the database: refused (${code}). This page will try again.`,
      migrated: true,
    }, code);
  }
  assertEquals(
    databaseUnavailable(new DeadlineError("Cannot read: no answer from the database within 10 ms")),
    {
      message: "Cannot read the database: Cannot read: no answer from the database within 10 ms " +
        "(CLIENT_DEADLINE). This page will try again.",
      migrated: true,
    },
  );
});

Deno.test("databaseUnavailable() says a database without monitor's tables needs `monitor migrate`", () => {
  assertEquals(databaseUnavailable(withCode("42P01", 'relation "site_status" does not exist')), {
    message: `Cannot read the database: relation "site_status" does not exist (42P01). ${MIGRATE_ADVICE}`,
    migrated: false,
  });
  assertEquals(
    databaseUnavailable(withCode("42883", "function site_uptime() does not exist"))?.migrated,
    false,
  );
});

Deno.test("databaseUnavailable() leaves the program's own faults to a 500", () => {
  for (const code of ["22021", "42601", "25006", "42501", "XX000"]) {
    assertEquals(databaseUnavailable(withCode(code)), null, code);
  }
  assertEquals(databaseUnavailable(new TypeError("x is undefined")), null);
  assertEquals(databaseUnavailable(null), null);
  assertEquals(databaseUnavailable("text"), null);
});
