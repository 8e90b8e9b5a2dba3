/**
 * The sink's database connection pool, replaced when a call hangs. postgres.js 3.4.9 can leave a query
 * pending forever when the server closes connections while it starts up (porsager/postgres#1193): a sink
 * that waited on such a query would stop storing without a word. Every call therefore gets a deadline; past
 * it the pool is thrown away and a fresh one made, and the caller retries. Retrying is safe because the
 * writer skips what an earlier (perhaps committed) attempt stored.
 *
 * Every call also ends at once when the shutdown signal aborts (the program must exit within its drain
 * timeout whatever the database does; a transaction abandoned so is either committed with its offsets or
 * not at all), and the handle remembers whether the last call found the database unreachable, for
 * `/healthz`.
 *
 * @module
 */
import type postgres from "postgres";
import { deadline, isTimeout } from "../async.ts";
import { describeError, isConnectionFailure } from "./retry.ts";

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
 * const shutdown = new AbortController();
 * const url = "postgres://monitor@127.0.0.1:5432/monitor";
 * const open = () => connectDatabase({ url, log });
 * const db = new DatabaseHandle(open, await open(), shutdown.signal);
 * await db.run("store a batch", (sql) => writeBatch(sql, batch), 15_000);
 * await db.end();
 * ```
 */
export class DatabaseHandle {
  #sql: postgres.Sql;
  #unreachable: string | null = null;

  /** `signal` (the shutdown) ends every call under way and to come with its reason. */
  constructor(
    private readonly open: () => Promise<postgres.Sql>,
    sql: postgres.Sql,
    private readonly signal?: AbortSignal,
  ) {
    this.#sql = sql;
  }

  /**
   * Why the database could not be used by the last call that ended (a connection failure, a server
   * shutting down, a deadline passed), or null when it answered.
   */
  get unreachable(): string | null {
    return this.#unreachable;
  }

  /** The current pool. */
  get sql(): postgres.Sql {
    return this.#sql;
  }

  /**
   * Runs `call` on the current pool; past `deadlineMs` rejects with a {@linkcode DeadlineError} and replaces
   * it; when the shutdown signal aborts, rejects with its reason at once.
   */
  async run<T>(what: string, call: (sql: postgres.Sql) => Promise<T>, deadlineMs: number): Promise<T> {
    const sql = this.#sql;
    try {
      const result = await deadline(call(sql), deadlineMs, this.signal ? { signal: this.signal } : {});
      this.#unreachable = null;
      return result;
    } catch (error) {
      if (this.signal?.aborted) throw this.signal.reason;
      if (!isTimeout(error)) {
        // A refused statement proves the database answers; only connection trouble makes it unreachable
        // (an error of the program's own, with no code, says nothing about the database).
        this.#unreachable = isConnectionFailure(error) ? describeError(error) : null;
        throw error;
      }
      const late = new DeadlineError(`Cannot ${what}: no answer from the database within ${deadlineMs} ms`);
      this.#unreachable = late.message;
      await this.#replace(sql);
      throw late;
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
