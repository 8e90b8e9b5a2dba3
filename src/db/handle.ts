/**
 * The database connection pool of the sink and of `monitor serve`, replaced when a call hangs. postgres.js
 * 3.4.9 can leave a query pending forever when the server closes connections while it starts up
 * (porsager/postgres#1193): a sink that waited on such a query would stop storing without a word. Every call
 * therefore gets a deadline; past it a fresh pool is made for the calls to come, and the caller retries.
 * Retrying is safe because the writer skips what an earlier (perhaps committed) attempt stored.
 *
 * The replaced pool is retired, not destroyed: the other calls under way on it (a busy server passes one
 * call's deadline while many others are about to finish) go on until they settle, each within its own
 * deadline; then the pool is ended with a few seconds' grace for what is left, the late calls' queries.
 * So one late call never fails the others; and since only a call made on the current pool can replace it,
 * many late calls together replace it once.
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
 * import type { Batch } from "./batch.ts";
 * import { writeBatch } from "./writer.ts";
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
  /** The fresh pool being opened for a late call, shared by the calls that pass their deadline meanwhile. */
  #opening: Promise<void> | null = null;
  /** The calls under way on each pool, so a replaced pool ends only when they have settled. */
  readonly #calls = new Map<postgres.Sql, Set<Promise<unknown>>>();
  /** Replaced pools waiting for their calls to settle. */
  readonly #retiring = new Set<postgres.Sql>();
  /** Replaced pools being ended. */
  readonly #ending = new Set<Promise<void>>();

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
   * it (the calls under way on it go on); when the shutdown signal aborts, rejects with its reason at once.
   */
  async run<T>(what: string, call: (sql: postgres.Sql) => Promise<T>, deadlineMs: number): Promise<T> {
    const sql = this.#sql;
    const bounded = deadline(call(sql), deadlineMs, this.signal ? { signal: this.signal } : {});
    this.#track(sql, bounded);
    try {
      const result = await bounded;
      this.#unreachable = null;
      return result;
    } catch (error) {
      if (this.signal?.aborted) throw this.signal.reason;
      if (!isTimeout(error)) {
        // A refused statement proves the database answers; connection trouble makes it unreachable, and so
        // does an error without a code (a socket or TLS failure may have none; a program error on one batch
        // is dead-lettered within a few attempts, and the next answer clears this).
        this.#unreachable =
          isConnectionFailure(error) || typeof (error as { code?: unknown }).code !== "string"
            ? describeError(error)
            : null;
        throw error;
      }
      const late = new DeadlineError(`Cannot ${what}: no answer from the database within ${deadlineMs} ms`);
      this.#unreachable = late.message;
      await this.#replace(sql);
      throw late;
    }
  }

  /**
   * Closes the current pool and the replaced ones still waiting for their calls within `timeoutSeconds`, and
   * waits for the replaced ones already closing (each within its few seconds' grace).
   */
  async end(timeoutSeconds = 5): Promise<void> {
    const retiring = [...this.#retiring];
    this.#retiring.clear();
    await Promise.all([
      this.#sql.end({ timeout: timeoutSeconds }),
      ...retiring.map((pool) => pool.end({ timeout: timeoutSeconds }).catch(() => {})),
      ...this.#ending,
    ]);
  }

  // Every tracked call has a deadline, so a pool's set empties within the longest deadline of its calls.
  #track(sql: postgres.Sql, call: Promise<unknown>): void {
    let calls = this.#calls.get(sql);
    if (calls === undefined) this.#calls.set(sql, calls = new Set());
    calls.add(call);
    const settled = () => {
      calls.delete(call);
      if (calls.size > 0) return;
      this.#calls.delete(sql);
      if (this.#retiring.delete(sql)) this.#close(sql);
    };
    call.then(settled, settled);
  }

  async #replace(stale: postgres.Sql): Promise<void> {
    if (stale !== this.#sql) return; // another caller replaced it already
    this.#opening ??= this.open().then((fresh) => {
      this.#sql = fresh;
      if (this.#calls.has(stale)) this.#retiring.add(stale);
      else this.#close(stale);
    }).finally(() => this.#opening = null);
    await this.#opening;
  }

  #close(stale: postgres.Sql): void {
    const ending = stale.end({ timeout: RETIRED_POOL_GRACE_SECONDS }).catch(() => {});
    this.#ending.add(ending);
    ending.finally(() => this.#ending.delete(ending));
  }
}

/** How long a replaced pool's queries of late calls may go on once no call waits for it. */
const RETIRED_POOL_GRACE_SECONDS = 5;
