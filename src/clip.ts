/**
 * Cutting text to a length, for what the agent publishes and what the read side shows.
 *
 * @module
 */

/**
 * `text` cut to at most `length` UTF-16 code units, with an ellipsis. A character whose pair of code units the
 * cut would split is left out whole (one code unit shorter), and any other unpaired surrogate of the kept part
 * becomes U+FFFD.
 *
 * @example
 * ```ts
 * clip("connection refused", 10); // "connectio…"
 * ```
 */
export function clip(text: string, length: number): string {
  if (text.length <= length) return text;
  const kept = text.slice(0, length - 1);
  const whole = /[\uD800-\uDBFF]$/.test(kept) ? kept.slice(0, -1) : kept;
  return `${whole}…`.toWellFormed();
}
