/**
 * The assertions tests use: Node's strict assert, re-exported under std-like names (JSR is unreachable here).
 *
 * @module
 */
import assert from "node:assert/strict";

export const assertEquals: <T>(actual: unknown, expected: T, message?: string) => asserts actual is T =
  assert.deepStrictEqual;
export const assertMatch = (actual: string, pattern: RegExp, message?: string): void =>
  assert.match(actual, pattern, message);
export const assert_ = assert;

/** Asserts that `fn` throws (or rejects with) an error of `ErrorClass` whose message is exactly `message`. */
export async function assertRejects(
  fn: () => unknown,
  ErrorClass: new (...args: never[]) => Error,
  message?: string | RegExp,
): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, "expected an error, none was thrown");
  assert.ok(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${String(caught)}`);
  if (typeof message === "string") assert.equal((caught as Error).message, message);
  else if (message) assert.match((caught as Error).message, message);
  return caught as Error;
}

/** Synchronous twin of {@linkcode assertRejects}. */
export function assertThrows(
  fn: () => unknown,
  ErrorClass: new (...args: never[]) => Error,
  message?: string | RegExp,
): Error {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, "expected an error, none was thrown");
  assert.ok(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${String(caught)}`);
  if (typeof message === "string") assert.equal((caught as Error).message, message);
  else if (message) assert.match((caught as Error).message, message);
  return caught as Error;
}
