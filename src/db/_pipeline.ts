/**
 * Statements sent together on one transaction (postgres.js pipelines them on its connection). Private to src/db.
 *
 * @module
 */

/**
 * Awaits statements sent together on one transaction. Unlike Promise.all it waits for all of them, so none is
 * still running when the transaction ends, and it throws the error that aborted the transaction rather than a
 * later statement's "current transaction is aborted" (SQLSTATE 25P02).
 */
export async function all<T extends readonly unknown[]>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  const failures = results.flatMap((result) =>
    result.status === "rejected" ? [result.reason as unknown] : []
  );
  if (failures.length > 0) {
    throw failures.find((error) => (error as { code?: string }).code !== "25P02") ?? failures[0];
  }
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
