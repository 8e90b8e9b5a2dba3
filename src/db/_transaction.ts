/**
 * `sql.begin()` that survives the server closing the transaction's connection. Private to src/db.
 *
 * postgres.js 3.4.9 crashes the process when a transaction's connection is closed under it (for example by
 * `pg_terminate_backend`) while a statement runs: the statement fails, `sql.begin()` answers by sending
 * ROLLBACK on the same connection, whose socket is already gone, and the write it schedules throws
 * `TypeError: Cannot read properties of null (reading 'write')` from a timer (`nextWrite` in
 * src/connection.js), which no caller can catch (porsager/postgres#1154). Any statement sent on that
 * connection after the close, COMMIT included, does the same.
 *
 * It also keeps postgres.js from holding a transaction's data for good (see {@linkcode transaction}).
 *
 * @module
 */
import type postgres from "postgres";
import { delay } from "../async.ts";

/**
 * Runs `fn` in a transaction like `sql.begin(fn)`. If the connection closes while `fn` waits on a statement,
 * postgres.js is given nothing more for that connection (the server has rolled the transaction back already)
 * and the returned promise rejects with postgres.js's own `CONNECTION_CLOSED` error, which callers treat as a
 * transient connection failure.
 *
 * `fn` must wait only on its own statements (true of every caller): a statement started after the connection
 * closed, say after a timer, would still reach the closed connection.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * declare const sql: postgres.Sql;
 * const [row] = await transaction(sql, (tx) => tx`select 1 as n`);
 * ```
 */
export async function transaction<T>(
  sql: postgres.Sql,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  let closed = false;
  const done = sql.begin(async (tx) => {
    try {
      return await fn(new Proxy(tx, CALLED_THROUGH));
    } catch (error) {
      // postgres.js rejects the statements, then the transaction (with CONNECTION_CLOSED), in one close handler;
      // one timer turn later `closed` says which of the two this failure is.
      await delay(0);
      // Never settling keeps postgres.js from sending ROLLBACK on the closed connection; `done` rejects anyway.
      if (closed) return new Promise<never>(() => {});
      throw error;
    }
  });
  done.catch((error) => {
    if ((error as { code?: unknown }).code === "CONNECTION_CLOSED") closed = true;
  });
  return await done as T;
}

/**
 * Calls of `tx` go through this handler, whose frame stands between postgres.js and the caller. postgres.js keeps,
 * for as long as the process runs, an `Error` made at the first run of each statement text (`cachedError` in its
 * src/query.js, four frames deep), and V8 keeps each frame's function alive with it: without this frame, the
 * function that sent the statement, and with it every variable its closures share. In the sink that was the
 * first transaction's whole batch and its rows (some 8,500 checks in a heap snapshot of an idle sink). The price:
 * the query stack postgres.js appends to a statement's error ends at this handler, not at the caller.
 */
const CALLED_THROUGH: ProxyHandler<postgres.TransactionSql> = {
  apply: (target, self, args) => Reflect.apply(target, self, args),
};
