/**
 * The two files pages load from the program itself (never a CDN, so the binary works offline): the style
 * sheet, and a script of a few lines that shows `<time>` elements in the viewer's time zone. Pages work
 * without the script: they then show UTC.
 *
 * @module
 */

/** Served at `/assets/style.css`. */
export const STYLE_CSS = `
:root{--up:#2e7d32;--degraded:#e0a100;--down:#c62828;--stale:#757575;--muted:#666;--line:#ddd}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 32px;color:#222}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 16px;border-bottom:1px solid var(--line);margin-bottom:12px}
h1{font-size:20px;margin:12px 0}h1 a{color:inherit;text-decoration:none}h2{font-size:16px;margin:24px 0 8px}
a{color:#1558b0}.muted,.url,.locs,.since{color:var(--muted);font-size:12px}
.url{max-width:320px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
form.filter{display:flex;gap:8px;margin:8px 0 12px}form.filter input{flex:0 1 260px;padding:4px 6px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}td.num,th.num{text-align:right;white-space:nowrap}
.state{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;font-size:12px}
.state.up{background:var(--up)}.state.degraded{background:var(--degraded)}.state.down{background:var(--down)}.state.stale{background:var(--stale)}
tr.incident td:first-child{border-left:3px solid var(--down)}.incident-note{color:var(--down);font-size:12px}
.bars{display:inline-flex;gap:1px;height:24px;align-items:stretch}
.bars i{display:block;width:3px;background:var(--up);border-radius:1px}
.bars i.minor{background:#9ccc65}.bars i.major{background:#ffa000}.bars i.bad{background:var(--down)}.bars i.none{background:#e0e0e0}
svg.spark polyline{fill:none;stroke:#1558b0;stroke-width:1.5}
svg.chart{width:100%;max-width:640px;height:auto;font-size:10px;fill:var(--muted)}
svg.chart polyline{fill:none;stroke-width:1.5}svg.chart .p50{stroke:#1558b0}svg.chart .p95{stroke:#e0a100}svg.chart .p99{stroke:#c62828}
svg.chart .pt{fill:#e0a100}svg.chart .axis{stroke:var(--line)}
.legend span{margin-right:12px;font-size:12px}.legend .p50{color:#1558b0}.legend .p95{color:#e0a100}.legend .p99{color:#c62828}
nav.pages{margin:12px 0;display:flex;gap:12px}
.error{color:var(--down)}code{font-size:12px;word-break:break-all}
footer{margin-top:24px;color:var(--muted);font-size:12px}
`.trim() + "\n";

/** Served at `/assets/time.js`: `<time datetime>` shown in the viewer's zone, UTC kept in the tooltip. */
export const TIME_JS = `
for (const t of document.querySelectorAll("time[datetime]")) {
  const d = new Date(t.getAttribute("datetime"));
  if (Number.isNaN(d.getTime())) continue;
  t.title = t.textContent;
  t.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
`.trim() + "\n";
