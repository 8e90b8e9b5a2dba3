/**
 * The frame every page shares: head (style sheet, time script, optional self-refresh), header with the
 * title, footer; and the small pieces pages repeat (a state label, a `<time>`).
 *
 * @module
 */
import { BIDI_CONTROLS, formatUtc } from "./format.ts";
import { type Html, html, type HtmlValue } from "./html.ts";

/** What a page needs of the server. */
export interface PageContext {
  /** `--title`. */
  readonly title: string;
}

// In the body a name is isolated (`<bdi>`), but a title is text alone, and a name's unclosed U+202E would show
// the rest of it reversed.
const BIDI_CONTROL = new RegExp(`[${BIDI_CONTROLS}]`, "g");

/** `text` without bidi controls, for where markup cannot isolate it (a page's title). */
export function withoutBidiControls(text: string): string {
  return text.replace(BIDI_CONTROL, "");
}

/** A full page. `refreshSeconds` makes it reload itself (keeping its URL, so filters stay). */
export function page(
  context: PageContext,
  options: { readonly heading: string; readonly refreshSeconds?: number; readonly body: HtmlValue },
): string {
  const refresh = options.refreshSeconds === undefined
    ? ""
    : html`<meta http-equiv="refresh" content="${options.refreshSeconds}">`;
  const title = options.heading === context.title ? context.title : `${options.heading} · ${context.title}`;
  return "<!doctype html>\n" + html`
    <html lang="en">
      <head><meta charset="utf-8">
    <meta name="viewport" content="width=device-width,initial-scale=1">${refresh}
    <title>${withoutBidiControls(
      title,
    )}</title><link rel="stylesheet" href="/assets/style.css"><script src="/assets/time.js" defer></script>
      </head>
      <body><header><h1><a href="/">${context.title}</a></h1></header>
    ${options.body}
      </body>
    </html>
  `.value;
}

/** A `<time>` showing UTC (localized by the time script), with UTC in its tooltip. */
export function time(at: Date): Html {
  const utc = formatUtc(at);
  return html`<time datetime="${at.toISOString()}" title="${utc}">${utc}</time>`;
}

/** The coloured label of a state (up, degraded, down, stale). */
export function stateLabel(state: string): Html {
  return html`<span class="state ${state}">${state}</span>`;
}
