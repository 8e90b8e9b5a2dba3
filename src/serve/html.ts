/**
 * HTML that escapes by default: the `html` tag escapes every interpolated value unless it is already
 * {@linkcode Html} (built by the tag itself), so a site name, URL, region or error message from a check
 * always renders as text.
 *
 * @module
 */

/** Markup that is safe to insert as it is: made by {@linkcode html} or {@linkcode raw}. */
export class Html {
  /** Wraps markup that is already safe. */
  constructor(readonly value: string) {}
  /** The markup. */
  toString(): string {
    return this.value;
  }
}

const SPECIAL = /[&<>"']/g;
const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML element content and quoted attribute values (and for XML, such as SVG).
 *
 * @example
 * ```ts
 * escapeHtml(`<script>alert("1")</script>`); // "&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(SPECIAL, (char) => ENTITIES[char]!);
}

/** Trusted markup, such as a constant or an SVG made from numbers. Never pass it text from a check. */
export function raw(markup: string): Html {
  return new Html(markup);
}

/** A value the `html` tag accepts: text is escaped, arrays are joined, null, undefined and false vanish. */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.value;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

// deno fmt lays out `html` templates as indented HTML; the indentation is collapsed once per template
// (to a newline, which HTML renders like the whitespace it replaces), so pages do not carry it.
const compacted = new WeakMap<TemplateStringsArray, readonly string[]>();

function compact(strings: TemplateStringsArray): readonly string[] {
  let parts = compacted.get(strings);
  if (parts === undefined) {
    parts = strings.map((part) => part.replace(/\n[ \t]*/g, "\n").replace(/\n+/g, "\n"));
    compacted.set(strings, parts);
  }
  return parts;
}

/**
 * Builds markup from a template: interpolated values are escaped unless they are {@linkcode Html}. Indentation
 * after a line break in the template is dropped.
 *
 * @example
 * ```ts
 * html`<td>${"<b>"}</td>`.value; // "<td>&lt;b&gt;</td>"
 * html`<ul>${["a", "b"].map((x) => html`<li>${x}</li>`)}</ul>`.value; // "<ul><li>a</li><li>b</li></ul>"
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  const parts = compact(strings);
  let out = parts[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + parts[i + 1]!;
  return new Html(out);
}
