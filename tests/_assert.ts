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

type ErrorClass = new (...args: never[]) => Error;

/** Asserts that `caught` is an `ErrorClass` whose message is `message` (exactly, or matching a pattern). */
function assertError(caught: unknown, ErrorClass: ErrorClass, message?: string | RegExp): Error {
  assert.ok(caught !== undefined, "expected an error, none was thrown");
  assert.ok(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${String(caught)}`);
  if (typeof message === "string") assert.equal(caught.message, message);
  else if (message) assert.match(caught.message, message);
  return caught;
}

/** Asserts that `fn` throws (or rejects with) an error of `ErrorClass` whose message is exactly `message`. */
export async function assertRejects(
  fn: () => unknown,
  ErrorClass: ErrorClass,
  message?: string | RegExp,
): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    return assertError(error, ErrorClass, message);
  }
  return assertError(undefined, ErrorClass, message);
}

/** Synchronous twin of {@linkcode assertRejects}. */
export function assertThrows(fn: () => unknown, ErrorClass: ErrorClass, message?: string | RegExp): Error {
  try {
    fn();
  } catch (error) {
    return assertError(error, ErrorClass, message);
  }
  return assertError(undefined, ErrorClass, message);
}
