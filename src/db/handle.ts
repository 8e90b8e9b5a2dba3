/**
 * The sink's database connection pool, replaced when a call hangs. postgres.js 3.4.9 can leave a query
 * pending forever when the server closes connections while it starts up (porsager/postgres#1193): a sink
 * that waited on such a query would stop storing without a word. Every call therefore gets a deadline; past
 * it the pool is thrown away and a fresh one made, and the caller retries. Retrying is safe because the
 * writer skips what an earlier (perhaps committed) attempt stored.
 *
 * @module
 */
import type postgres from "postgres";
import { deadline, isTimeout } from "../async.ts";

/** The error of a call that passed its deadline. */
export class DeadlineError extends Error {
  override name = "DeadlineError";
  /** Like the socket errors postgres.js reports, so callers treat it as a connection failure. */
  readonly code = "CLIENT_DEADLINE";
}

/**
 * A replaceable pool.
 *
 * @example
 * ```ts
 * import { silentLogger as log } from "../log.ts";
 * import { connectDatabase } from "./connect.ts";
 * import { type Batch, writeBatch } from "./writer.ts";
 * declare const batch: Batch;
 * const url = "postgres://monitor@127.0.0.1:5432/monitor";
 * const db = new DatabaseHandle(() => connectDatabase({ url, log }), await connectDatabase({ url, log }));
 * await db.run("store a batch", (sql) => writeBatch(sql, batch), 30_000);
 * await db.end();
 * ```
 */
export class DatabaseHandle {
  #sql: postgres.Sql;

  constructor(private readonly open: () => Promise<postgres.Sql>, sql: postgres.Sql) {
    this.#sql = sql;
  }

  /** The current pool. */
  get sql(): postgres.Sql {
    return this.#sql;
  }

  /** Runs `call` on the current pool; past `deadlineMs` rejects with a {@linkcode DeadlineError} and replaces it. */
  async run<T>(what: string, call: (sql: postgres.Sql) => Promise<T>, deadlineMs: number): Promise<T> {
    const sql = this.#sql;
    try {
      return await deadline(call(sql), deadlineMs);
    } catch (error) {
      if (!isTimeout(error)) throw error;
      await this.#replace(sql);
      throw new DeadlineError(`Cannot ${what}: no answer from the database within ${deadlineMs} ms`);
    }
  }

  /** Closes the current pool. */
  end(timeoutSeconds = 5): Promise<void> {
    return this.#sql.end({ timeout: timeoutSeconds });
  }

  async #replace(stale: postgres.Sql): Promise<void> {
    if (stale !== this.#sql) return; // another caller replaced it already
    this.#sql = await this.open();
    stale.end({ timeout: 0 }).catch(() => {});
  }
}
