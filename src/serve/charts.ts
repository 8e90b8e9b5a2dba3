/**
 * Charts drawn on the server as inline markup: the 90-day uptime bars, the 24-hour response-time sparkline
 * and the percentile line chart of a site page. No script, no library, nothing from a CDN: they render without
 * JavaScript, in the binary offline, and add a few hundred bytes to a page instead of a 40 KB library.
 *
 * @module
 */
import type { UptimeBucket } from "../db/read_uptime.ts";
import { formatMs, formatPercent } from "./format.ts";
import { type Html, html, raw } from "./html.ts";

/** One day's (or hour's) figures, as the uptime queries return them (without the site and histogram). */
export type Bucket = Omit<UptimeBucket, "site" | "histogram">;

/** The colour class of an uptime figure: none (no data), ok (≥ 99.9 %), minor (≥ 99 %), major (≥ 95 %), bad. */
export function uptimeClass(percent: number | null): "none" | "ok" | "minor" | "major" | "bad" {
  if (percent === null) return "none";
  if (percent >= 99.9) return "ok";
  if (percent >= 99) return "minor";
  if (percent >= 95) return "major";
  return "bad";
}

const DAY_MS = 86_400_000;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * Puts buckets into `count` consecutive slots of `stepMs` starting at `first`; a slot without a bucket is
 * null. Buckets outside the slots are ignored.
 *
 * @example
 * ```ts
 * declare const buckets: Bucket[];
 * slots(buckets, new Date("2026-09-02T00:00:00Z"), 90, 86_400_000); // 90 entries, oldest first
 * ```
 */
export function slots(
  buckets: readonly Bucket[],
  first: Date,
  count: number,
  stepMs: number,
): (Bucket | null)[] {
  const out: (Bucket | null)[] = new Array(count).fill(null);
  for (const bucket of buckets) {
    const index = Math.floor((bucket.bucket.getTime() - first.getTime()) / stepMs);
    if (index >= 0 && index < count) out[index] = bucket;
  }
  return out;
}

/**
 * One bar per day, oldest first, coloured by uptime, each with a tooltip of its figures. Plain inline
 * elements rather than SVG rectangles: about 40 bytes a bar, so 90 bars for 50 sites stay under 200 KB.
 * Green (`ok`) is the default style and carries no class.
 *
 * @example
 * ```ts
 * declare const days: Bucket[], first: Date;
 * dailyBars(slots(days, first, 90, 86_400_000), first);
 * ```
 */
export function dailyBars(days: readonly (Bucket | null)[], first: Date): Html {
  const labels = dayLabels(first, days.length);
  let bars = "";
  for (let i = 0; i < days.length; i++) {
    const day = days[i]!;
    if (day === null || day.checks === 0) {
      bars += `<i class="none" title="${labels[i]}: no data"></i>`;
      continue;
    }
    const kind = uptimeClass(day.uptimePercent);
    bars += `<i${kind === "ok" ? "" : ` class="${kind}"`} title="${labels[i]}: ${
      formatPercent(day.uptimePercent)
    } of ${day.checks}"></i>`;
  }
  return raw(
    `<span class="bars" role="img" aria-label="uptime per day, last ${days.length} days">${bars}</span>`,
  );
}

// Every row of a page has the same days: their labels are made once.
let labelCache: { key: string; labels: string[] } = { key: "", labels: [] };

function dayLabels(first: Date, count: number): string[] {
  const key = `${first.getTime()}/${count}`;
  if (labelCache.key !== key) {
    const labels = Array.from({ length: count }, (_, i) => {
      const date = new Date(first.getTime() + i * DAY_MS);
      return `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}`;
    });
    labelCache = { key, labels };
  }
  return labelCache.labels;
}

function scale(
  values: readonly (number | null)[],
  height: number,
): { max: number; y: (v: number) => number } {
  let max = 0;
  for (const value of values) if (value !== null && value > max) max = value;
  max = max > 0 ? max : 1;
  return { max, y: (v: number) => Math.round((height - (v / max) * (height - 2) - 1) * 10) / 10 };
}

/**
 * A sparkline of response times (`values`, one per slot, null where no data), as a small inline SVG.
 *
 * @example
 * ```ts
 * sparkline([12, 14, null, 13], "p50 response time per hour, last 24 h");
 * ```
 */
export function sparkline(values: readonly (number | null)[], label: string): Html {
  const width = 96;
  const height = 20;
  const { max, y } = scale(values, height);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.flatMap((value, i) =>
    value === null ? [] : [`${Math.round(i * step * 10) / 10},${y(value)}`]
  );
  const line = points.length > 0 ? `<polyline points="${points.join(" ")}"/>` : "";
  return html`
    <svg class="spark" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img"
      aria-label="${label}"><title>${label}, max ${formatMs(
        values.some((v) => v !== null) ? max : null,
      )}</title>${raw(line)}</svg>
  `;
}

/** A time axis label: `HH:00 UTC` for hourly charts, `Mon D` for daily ones (UTC). */
function axisLabel(time: Date, stepMs: number): string {
  if (stepMs < DAY_MS) return `${String(time.getUTCHours()).padStart(2, "0")}:00 UTC`;
  return `${MONTHS[time.getUTCMonth()]} ${time.getUTCDate()}`;
}

/**
 * The percentile chart of a site page: p50, p95 and p99 per slot as three lines, a point with a tooltip per
 * slot that has data, the highest value on the y axis and the first and last slots' times on the x axis (UTC).
 *
 * @example
 * ```ts
 * declare const hours: Bucket[], first: Date;
 * percentileChart(slots(hours, first, 24, 3_600_000), first, 3_600_000, "last 24 h, by hour");
 * ```
 */
export function percentileChart(
  buckets: readonly (Bucket | null)[],
  first: Date,
  stepMs: number,
  label: string,
): Html {
  const [width, height, left, bottom] = [600, 160, 48, 18];
  const plotW = width - left - 4;
  const plotH = height - bottom;
  const values = buckets.flatMap((b) => b === null ? [] : [b.p50Ms, b.p95Ms, b.p99Ms]);
  const { max, y } = scale(values, plotH);
  const step = buckets.length > 1 ? plotW / (buckets.length - 1) : 0;
  const x = (i: number) => Math.round((left + i * step) * 10) / 10;
  const line = (pick: (b: Bucket) => number | null, cls: string) => {
    const points = buckets.flatMap((b, i) => {
      const value = b === null ? null : pick(b);
      return value === null ? [] : [`${x(i)},${y(value)}`];
    });
    return points.length > 0 ? `<polyline class="${cls}" points="${points.join(" ")}"/>` : "";
  };
  const dots = buckets.flatMap((b, i) => {
    if (b === null || b.p95Ms === null) return [];
    const time = new Date(first.getTime() + i * stepMs);
    const tip = `${time.toISOString().slice(0, 16).replace("T", " ")} UTC: p50 ${formatMs(b.p50Ms)}, p95 ${
      formatMs(b.p95Ms)
    }, p99 ${formatMs(b.p99Ms)}, ${formatPercent(b.uptimePercent)} up of ${b.checks}`;
    return [`<circle class="pt" cx="${x(i)}" cy="${y(b.p95Ms)}" r="2.5"><title>${tip}</title></circle>`];
  });
  const last = new Date(first.getTime() + (buckets.length - 1) * stepMs);
  const empty = dots.length === 0
    ? `<text x="${width / 2}" y="${plotH / 2}" text-anchor="middle">no checks in this period</text>`
    : "";
  return html`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${label}">${
    raw(
      `<line class="axis" x1="${left}" y1="${plotH}" x2="${width - 4}" y2="${plotH}"/>` +
        `<text x="${left - 4}" y="10" text-anchor="end">${formatMs(values.length ? max : null)}</text>` +
        `<text x="${left - 4}" y="${plotH}" text-anchor="end">0</text>` +
        `<text x="${left}" y="${height - 4}">${axisLabel(first, stepMs)}</text>` +
        `<text x="${width - 4}" y="${height - 4}" text-anchor="end">${axisLabel(last, stepMs)}</text>` +
        line((b) => b.p99Ms, "p99") + line((b) => b.p95Ms, "p95") + line((b) => b.p50Ms, "p50") +
        dots.join("") + empty,
    )
  }</svg>`;
}
