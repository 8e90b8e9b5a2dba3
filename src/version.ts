/**
 * The program's version, as reported by `--version` and in the prober's `User-Agent` header.
 *
 * @module
 */

/** The version of monitor, e.g. in `User-Agent: monitor/0.1.0`. */
export const VERSION = "0.1.0";
