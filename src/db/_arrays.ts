/**
 * PostgreSQL array literals (`{1,2,NULL}`, `{"a","b\"c"}`), each sent as ONE bound parameter and cast in SQL
 * (`${intArray(ids)}::int4[]`), for the `unnest(…)` bulk statements of the writer. Building the literal here costs
 * a fraction of postgres.js's per-element serializer (two regular-expression replacements per element), which
 * matters at tens of thousands of elements per batch; and the parameter's type comes from the cast, so no array
 * type has to be known to the client when its pool connected (check_error_kind may be created later). Private to
 * src/db.
 *
 * @module
 */

const NEEDS_ESCAPE = /["\\]/;
const ESCAPE = /["\\]/g;

/** A text[] literal: every element quoted (backslash and double quote escaped), null as NULL. */
export function textArray(values: readonly (string | null)[]): string {
  // The usual column (no null, nothing to escape) is joined as it is: one string made, not one per element.
  // Indexed loops here and below: `for…of` allocated an iterator result per element (about 300 bytes a stored
  // check in the sink's allocation profile).
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value === null || NEEDS_ESCAPE.test(value)) return arrayLiteral(values, quote);
  }
  return values.length === 0 ? "{}" : joinWithin('{"', values.slice() as string[], '","', '"}');
}

/** A numeric array literal (int or float elements); throws `RangeError` for NaN or an infinity. */
export function numberArray(values: readonly (number | null)[]): string {
  // join() prints a number as String() does; it only has to be finite, and not null (join would write "").
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value === null || !Number.isFinite(value)) return arrayLiteral(values, finiteNumber);
  }
  return joinWithin("{", values.slice() as number[], ",", "}");
}

/** A bool[] literal. */
export function boolArray(values: readonly (boolean | null)[]): string {
  return arrayLiteral(values, (value) => value ? "t" : "f");
}

// Joined, not appended to: `+=` makes a rope one node deep per element, which outlives the awaits before the
// statement is sent (so the GC moves and traces every node) and is then flattened by postgres.js; `join`
// writes one flat string at once.
function arrayLiteral<T>(values: readonly (T | null)[], element: (value: T) => string): string {
  const elements = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    elements[i] = value === null ? "NULL" : element(value);
  }
  return joinWithin("{", elements, ",", "}");
}

/**
 * `open + parts.join(separator) + close`, made as one flat string: braces added around the joined string would
 * make a rope of it, which postgres.js's write flattens into a second copy of the whole literal (a few hundred
 * kilobytes a column in a large transaction). Overwrites the first and last of `parts`, so it takes a copy.
 */
function joinWithin(open: string, parts: (string | number)[], separator: string, close: string): string {
  if (parts.length === 0) return open + close;
  parts[0] = open + parts[0];
  parts[parts.length - 1] = parts[parts.length - 1] + close;
  return parts.join(separator);
}

function quote(value: string): string {
  return `"${NEEDS_ESCAPE.test(value) ? value.replace(ESCAPE, "\\$&") : value}"`;
}

function finiteNumber(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`Cannot write a number to the database: got ${value}`);
  return String(value);
}
