/**
 * Shields-style badges (`label | value`, flat, 20 px high) as SVG, for READMEs: a site's state and its
 * uptime over a period.
 *
 * @module
 */
import { escapeHtml } from "./html.ts";

/** Badge colours, as shields.io uses them. */
export const BADGE_COLORS = {
  green: "#4c1",
  yellow: "#dfb317",
  orange: "#fe7d37",
  red: "#e05d44",
  grey: "#9f9f9f",
} as const;

// Widths in pixels of Verdana at 11 px, the shields font, by character class: close enough that text fits.
function textWidth(text: string): number {
  let width = 0;
  for (const char of text) {
    if ("ijlI.,:;|!'".includes(char)) width += 3.5;
    else if ("ftr -()[]{}/".includes(char)) width += 4.6;
    else if ("mwMW%@".includes(char)) width += 10.5;
    else if (/[A-Z]/.test(char)) width += 7.6;
    else width += 6.8;
  }
  return Math.ceil(width);
}

// XML 1.0's Char production: anything else (C0 controls but tab and newlines, lone surrogates, U+FFFE and
// U+FFFF) makes the SVG malformed, and an image viewer shows nothing. A stored name may hold such characters
// and a 404 badge shows the name requested.
const NOT_XML_CHAR = /[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu;

/** `text` escaped for XML, with characters XML cannot hold replaced by U+FFFD. */
function xmlText(text: string): string {
  return escapeHtml(text.replace(NOT_XML_CHAR, "\ufffd"));
}

/**
 * A flat badge: well-formed XML whatever `label` and `value` hold (they are escaped, and characters XML
 * cannot hold replaced).
 *
 * @example
 * ```ts
 * badge("shop", "up", BADGE_COLORS.green);
 * ```
 */
export function badge(label: string, value: string, color: string): string {
  const lw = textWidth(label) + 10;
  const vw = textWidth(value) + 10;
  const w = lw + vw;
  const [l, v] = [xmlText(label), xmlText(value)];
  const text = (x: number, t: string) =>
    `<text x="${x}" y="15" fill="#010101" fill-opacity=".3">${t}</text><text x="${x}" y="14">${t}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="20" role="img" aria-label="${l}: ${v}">` +
    `<title>${l}: ${v}</title>` +
    `<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>` +
    `<stop offset="1" stop-opacity=".1"/></linearGradient>` +
    `<clipPath id="r"><rect width="${w}" height="20" rx="3" fill="#fff"/></clipPath>` +
    `<g clip-path="url(#r)"><rect width="${lw}" height="20" fill="#555"/>` +
    `<rect x="${lw}" width="${vw}" height="20" fill="${color}"/><rect width="${w}" height="20" fill="url(#s)"/></g>` +
    `<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">` +
    text(lw / 2, l) + text(lw + vw / 2, v) + `</g></svg>`;
}

/** The colour of a site state: up green, degraded yellow, down red, stale grey. */
export function stateColor(state: string): string {
  switch (state) {
    case "up":
      return BADGE_COLORS.green;
    case "degraded":
      return BADGE_COLORS.yellow;
    case "down":
      return BADGE_COLORS.red;
    default:
      return BADGE_COLORS.grey;
  }
}

/** The colour of an uptime figure: ≥ 99.9 % green, ≥ 99 % yellow, ≥ 95 % orange, else red; grey without data. */
export function uptimeColor(percent: number | null): string {
  if (percent === null) return BADGE_COLORS.grey;
  if (percent >= 99.9) return BADGE_COLORS.green;
  if (percent >= 99) return BADGE_COLORS.yellow;
  if (percent >= 95) return BADGE_COLORS.orange;
  return BADGE_COLORS.red;
}
