/**
 * Cutting text to a length, for what the agent publishes and what the read side shows.
 *
 * @module
 */

/**
 * `text` cut to at most `length` characters, with an ellipsis; never half a surrogate pair.
 *
 * @example
 * ```ts
 * clip("connection refused", 10); // "connectio…"
 * ```
 */
export function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…`.toWellFormed() : text;
}
