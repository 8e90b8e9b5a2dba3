/**
 * How `monitor` runs, for the processes that tests and benchmarks start: the permissions and V8 flags of
 * `deno task compile` and `deno task dev` (dev/permissions.sh; a test keeps the two equal).
 *
 * @module
 */

/** The permissions and V8 flags of `deno task compile` and `deno task dev`. */
export const PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys",
  "--v8-flags=--max-semi-space-size=8,--heap-growing-percent=100,--enable-experimental-regexp-engine," +
  "--enable-experimental-regexp-engine-on-excessive-backtracks",
];
