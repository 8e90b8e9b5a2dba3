/**
 * Run by tests/db_transaction_test.ts with `--v8-flags=--expose-gc`: sends one statement from a closure that
 * shares its scope with a large object, through `transaction()` (`wrapped`) or postgres.js's own `sql.begin()`
 * (`direct`), and prints `kept` if the object is still reachable after the transaction and two full garbage
 * collections, else `released`.
 *
 * ```
 * deno run --allow-net --allow-env --v8-flags=--expose-gc tests/_retention_probe.ts URL wrapped|direct
 * ```
 *
 * @module
 */
import postgres from "postgres";
import { transaction } from "../src/db/_transaction.ts";

const [url, how] = Deno.args;
if (url === undefined || (how !== "wrapped" && how !== "direct")) {
  throw new TypeError("Cannot probe: expected a database URL and 'wrapped' or 'direct'");
}
const sql = postgres(url, { max: 1, onnotice: () => {} });
const collect = (globalThis as unknown as { gc?: () => void }).gc;
if (collect === undefined) throw new Error("Cannot probe: run with --v8-flags=--expose-gc");

let probe: WeakRef<number[]> | null = null;
// Each variant has a statement text of its own: postgres.js keeps what it keeps at the first run of a text.
async function send(tx: postgres.TransactionSql): Promise<void> {
  const rows = new Array<number>(100_000).fill(1.5);
  probe = new WeakRef(rows);
  const statement = () =>
    how === "wrapped"
      ? tx`select ${rows.length}::int4 as wrapped`
      : tx`select ${rows.length}::int4 as direct`;
  await statement();
}
if (how === "wrapped") await transaction(sql, send);
else await sql.begin(send);
// A WeakRef's target is kept until the current job ends: collect after a timer turn.
await new Promise((resolve) => setTimeout(resolve, 0));
collect();
collect();
console.log(probe!.deref() === undefined ? "released" : "kept");
await sql.end();
