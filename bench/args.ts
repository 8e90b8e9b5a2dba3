/**
 * Command-line options of the benchmarks run alone (`deno run -A bench/sink/main.ts --checks 300000`).
 *
 * @module
 */

/**
 * Removes `flag` and its value from `args` and returns the value; undefined when `flag` is absent.
 *
 * @throws {TypeError} `flag` is the last argument, without a value.
 *
 * @example
 * ```ts
 * const args = ["--checks", "300000", "--delete"];
 * takeOption(args, "--checks"); // "300000"; args is now ["--delete"]
 * ```
 */
export function takeOption(args: string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined) throw new TypeError(`Cannot parse arguments: '${flag}' needs a value`);
  args.splice(at, 2);
  return value;
}
