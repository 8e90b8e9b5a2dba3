/**
 * Site patterns whose matching time is bounded. A pattern is accepted only if V8's linear-time engine can run
 * it; at run time V8 (started with {@linkcode LINEAR_ENGINE_FLAGS}) matches with its fast backtracking engine
 * and switches to the linear one when a match backtracks too much, so `(a+)+$` costs milliseconds, not hours.
 * Patterns only a backtracking engine can run (backreferences, lookahead) are refused at config load: a
 * Worker cannot bound them, as `Worker.terminate()` does not interrupt a running match in Deno 2.9.
 *
 * @module
 */

/**
 * The V8 flags that bound matching: the first makes the `l` flag (linear engine) available, which
 * {@linkcode compilePattern} uses to ask V8 whether it can run a pattern in linear time; the second makes an
 * ordinary match fall back to that engine when it backtracks too much.
 */
export const LINEAR_ENGINE_FLAGS =
  "--enable-experimental-regexp-engine,--enable-experimental-regexp-engine-on-excessive-backtracks";

/**
 * Whether this process runs with {@linkcode LINEAR_ENGINE_FLAGS}. V8 reads them only at start-up
 * (`node:v8`'s `setFlagsFromString` has no effect on them), so only the command line can turn them on.
 *
 * @example
 * ```ts
 * if (!linearEngineEnabled()) console.error(`run with --v8-flags=${LINEAR_ENGINE_FLAGS}`);
 * ```
 */
export function linearEngineEnabled(): boolean {
  try {
    // deno-lint-ignore no-invalid-regexp -- the `l` flag exists only with the flags above
    new RegExp("", "l");
    return true;
  } catch {
    return false;
  }
}

/**
 * Compiles a site's pattern (no flags: JavaScript syntax, matched on UTF-16 code units) after checking that
 * its matching time can be bounded.
 *
 * @example
 * ```ts
 * compilePattern('"status":\\s*"ok"'); // /"status":\s*"ok"/
 * compilePattern("(\\w)\\1"); // throws RangeError: Cannot use a backreference ('\1') …
 * ```
 *
 * @param source The pattern as written in sites.toml.
 * @returns The compiled pattern, without flags.
 * @throws {SyntaxError} If the pattern is not a JavaScript regular expression (V8's message).
 * @throws {RangeError} If matching it could take unbounded time; the message says what to write instead.
 */
export function compilePattern(source: string): RegExp {
  const regex = new RegExp(source);
  const construct = unboundedConstruct(source);
  if (construct !== null) throw new RangeError(construct);
  if (linearEngineEnabled()) {
    try {
      new RegExp(source, "l");
    } catch {
      throw new RangeError(
        "Cannot match this pattern in linear time: simplify it (a group repeated a counted number of " +
          "times, such as '(.*a){20}', is the usual cause; use + or * or a smaller count)",
      );
    }
  }
  return regex;
}

/**
 * Names the first construct that makes a pattern impossible to bound, with what to write instead, or null.
 * Checked without V8's help so the message is specific and the same with or without the flags.
 */
function unboundedConstruct(source: string): string | null {
  // Without a named group, `\k<n>` is no backreference but the letters "k<n>" (outside Unicode mode).
  const hasNamedGroup = /\(\?<(?![=!])/.test(source);
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const char = source[i];
    if (char === "\\") {
      const next = source[i + 1] ?? "";
      const escape = source.slice(i, i + 2);
      if ((next === "p" || next === "P") && source[i + 2] === "{") {
        const end = source.indexOf("}", i);
        const text = end === -1 ? escape : source.slice(i, end + 1);
        return `Cannot use a Unicode property escape ('${text}'): it needs Unicode mode, which V8 cannot ` +
          "match in linear time; list the characters in a class instead, such as '[A-Za-zÀ-ÿ]'";
      }
      if (!inClass && /[1-9]/.test(next)) {
        return `Cannot use a backreference ('${escape}'): only a backtracking match can check it, which has ` +
          "no time bound; repeat the group's pattern instead, such as '(\\w)\\w' for '(\\w)\\1'";
      }
      if (!inClass && next === "k" && source[i + 2] === "<" && hasNamedGroup) {
        return "Cannot use a backreference ('\\k<…>'): only a backtracking match can check it, which has " +
          "no time bound; repeat the group's pattern instead";
      }
      i++;
    } else if (char === "[" && !inClass) {
      inClass = true;
    } else if (char === "]" && inClass) {
      inClass = false;
    } else if (
      !inClass && /^\(\?[ims]*(-[ims]*)?:/.test(source.slice(i, i + 12)) && source[i + 2] !== ":"
    ) {
      const end = source.indexOf(":", i);
      return `Cannot use a modifier group ('${source.slice(i, end + 1)}'): V8 cannot match it in linear ` +
        "time; write the cases out in classes instead, such as '[Oo][Kk]' for '(?i:ok)'";
    } else if (!inClass && (source.startsWith("(?=", i) || source.startsWith("(?!", i))) {
      const negative = source[i + 2] === "!";
      return `Cannot use a lookahead ('${source.slice(i, i + 3)}'): only a backtracking match can check ` +
        "it, which has no time bound; " + (negative
          ? "use a negated class instead, such as 'a[^b]' for 'a(?!b)'"
          : "match the text itself instead, such as 'ab' for 'a(?=b)'");
    }
  }
  return null;
}

/** The outcome of {@linkcode matchPattern}. */
export type PatternMatch =
  | { readonly matched: boolean; readonly error?: undefined }
  | { readonly matched: null; readonly error: string };

/**
 * Searches `text` for `regex` on this thread. With {@linkcode LINEAR_ENGINE_FLAGS} and a pattern from
 * {@linkcode compilePattern}, the time is linear in the text's length; a match that still exhausts V8's
 * stack (very long texts) is reported as an error rather than thrown.
 *
 * @example
 * ```ts
 * matchPattern(/ok/, "status: ok"); // { matched: true }
 * ```
 */
export function matchPattern(regex: RegExp, text: string): PatternMatch {
  try {
    // search() ignores lastIndex, so a pattern shared by every probe of the site stays stateless.
    return { matched: text.search(regex) !== -1 };
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return { matched: null, error: error.message };
  }
}
