/**
 * A stored error message longer than the agent ever publishes (another producer's may be up to 64 KiB) is cut
 * where the pages and the terminal show it; the database keeps it whole (the JSON API gives it so).
 */
import { assertEquals } from "./_assert.ts";
import { createTestDatabase } from "./_pg.ts";
import { makeCheck } from "./_checks.ts";
import { writeChecks } from "./_serve_data.ts";
import { loadSiteView } from "../src/serve/views.ts";
import { sitePage } from "../src/serve/page_site.ts";
import { siteDetail } from "../src/serve/status_table.ts";
import { errorText } from "../src/serve/format.ts";
import { MAX_ERROR_MESSAGE_LENGTH } from "../src/message.ts";

const MINUTE = 60_000;
// Ends in an emoji where the cut falls, so that a cut through its surrogate pair would show.
const LONG = "x".repeat(MAX_ERROR_MESSAGE_LENGTH - 2) + "😀" + "y".repeat(60_000);

Deno.test("errorText cuts a message to the limit with an ellipsis, never through a surrogate pair", () => {
  assertEquals(errorText("http", "Status 503"), "http: Status 503");
  assertEquals(errorText("dns", null), "dns: ");
  // The cut falls inside the emoji: it is left out whole, not shown as half a pair (U+FFFD).
  assertEquals(errorText("http", LONG), `http: ${"x".repeat(MAX_ERROR_MESSAGE_LENGTH - 2)}…`);
});

Deno.test("a site's page and terminal view show a 60 KB error message cut, its failures and incident too", async () => {
  const db = await createTestDatabase("monitor_long_error");
  try {
    const t = Math.floor(Date.now() / MINUTE) * MINUTE;
    const checks = [30, 20, 10].map((m) =>
      makeCheck("wordy", new Date(t - m * MINUTE), {
        up: false,
        status: 500,
        error: { kind: "http", message: LONG },
        interval_ms: 10 * MINUTE,
      })
    );
    await writeChecks(db.sql, checks);
    const view = await loadSiteView(db.sql, "wordy");
    assertEquals(view?.failures.length, 3);
    assertEquals(view!.failures[0]!.errorMessage, LONG, "the database keeps the message whole");
    const cut = errorText("http", LONG).replace("http: ", "");
    const page = sitePage({ title: "Test" }, view!);
    assertEquals(page.includes("y".repeat(100)), false);
    // The location's error, the incident's cause and each failure.
    assertEquals(
      page.split(cut).length - 1 >= 5,
      true,
      `the cut message appears ${page.split(cut).length - 1} times`,
    );
    const terminal = siteDetail(view!, false);
    assertEquals(terminal.includes("y".repeat(100)), false);
    assertEquals(terminal.includes(cut), true);
  } finally {
    await db.drop();
  }
});
