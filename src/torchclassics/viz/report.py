"""One self-contained static HTML page of every run: ``torchclassics report runs/``.

The page opens from disk with no server and no network: figures and GIFs are
embedded as ``data:`` URIs, CSS and the little JavaScript (sort, filter) are
inline, and a Content-Security-Policy forbids fetching anything else. Every
piece of text from a run goes through :func:`html.escape`.
"""
from __future__ import annotations

import base64
import math
import time
from html import escape
from pathlib import Path

from ..engine.rundir import runs_root
from ..errors import UserError
from ..synthesize import (FIGURE_TYPES, collect_runs, collect_studies, existing_root, format_cell, number,
                          table, write_text_atomic)

# Nothing may be fetched: images are data: URIs, style and script are inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

STYLE = """
:root { --fg:#1d2433; --muted:#667085; --line:#e3e7ee; --bg:#f7f8fb; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#111827; color:#f9fafb; padding:18px 32px; }
header h1 { margin:0; font-size:22px; }
header p { margin:4px 0 0; color:#cbd5e1; }
main { padding:20px 32px 60px; max-width:1400px; }
h2 { margin:28px 0 10px; font-size:18px; }
h3 { margin:0 0 4px; font-size:16px; }
h4 { margin:14px 0 6px; font-size:13px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
.controls { display:flex; gap:12px; align-items:center; flex-wrap:wrap; margin:8px 0 10px; }
.controls select, .controls input { font:inherit; padding:4px 8px; border:1px solid var(--line); border-radius:6px; background:#fff; }
.wide { overflow-x:auto; background:#fff; border:1px solid var(--line); border-radius:8px; }
table { border-collapse:collapse; }
table.runs { width:100%; }
table.runs th { position:sticky; top:0; background:#eef2f7; cursor:pointer; user-select:none; white-space:nowrap; }
table.runs th[aria-sort=ascending]::after { content:" \\25B2"; font-size:10px; }
table.runs th[aria-sort=descending]::after { content:" \\25BC"; font-size:10px; }
th, td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
tbody tr:hover { background:#f3f6fb; }
.badge { display:inline-block; padding:0 8px; border-radius:10px; font-size:12px; font-weight:600; margin-left:6px; vertical-align:middle; }
.badge.finished { background:#dcfce7; color:#166534; } .badge.unfinished { background:#fef3c7; color:#92400e; }
.badge.pruned { background:#e0e7ff; color:#3730a3; } .badge.failed { background:#fee2e2; color:#991b1b; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:16px 20px; margin:14px 0; }
.meta { color:var(--muted); margin:0 0 6px; font-size:13px; }
.cols { display:flex; gap:28px; flex-wrap:wrap; }
table.kv td:first-child { color:var(--muted); padding-right:16px; }
table.kv td { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12.5px; border:none; padding:2px 8px 2px 0; }
.gallery { display:flex; flex-wrap:wrap; gap:14px; }
figure { margin:0; }
figure img { max-width:min(520px,100%); height:auto; border:1px solid var(--line); border-radius:6px; background:#fff; }
figcaption { color:var(--muted); font-size:12px; }
svg.loss-curve text { font-size:11px; fill:var(--muted); }
.empty { color:var(--muted); font-style:italic; }
[hidden] { display:none !important; }
"""

SCRIPT = """
(function () {
  var table = document.getElementById('runs-table');
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function key(cell) {
    if (!cell) { return null; }
    if (cell.dataset.value !== undefined) { return Number(cell.dataset.value); }
    var text = cell.textContent.trim();
    return text === '' ? null : text;
  }
  function compare(a, b) {
    if (typeof a === 'number' && typeof b === 'number') { return a - b; }
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  function sortBy(index) {
    var th = headers[index];
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    headers.forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      var a = key(r.cells[index]), b = key(s.cells[index]);
      if (a === null || b === null) { return (a === null) - (b === null); }  // blanks last either way
      return ascending ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  headers.forEach(function (th, i) { th.addEventListener('click', function () { sortBy(i); }); });

  var experiment = document.getElementById('experiment-filter');
  var search = document.getElementById('run-search');
  var count = document.getElementById('shown-count');
  function applyFilter() {
    var wanted = experiment.value, query = search.value.trim().toLowerCase(), shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var hide = (wanted !== '' && row.dataset.experiment !== wanted) ||
                 (query !== '' && row.textContent.toLowerCase().indexOf(query) < 0);
      row.hidden = hide;
      var section = document.getElementById(row.dataset.target);
      if (section) { section.hidden = hide; }
      if (!hide) { shown += 1; }
    });
    count.textContent = shown + ' of ' + body.rows.length + ' runs shown';
  }
  experiment.addEventListener('change', applyFilter);
  search.addEventListener('input', applyFilter);
  applyFilter();
})();
"""


# -- small pieces ------------------------------------------------------------------------------
def data_uri(path: Path) -> str:
    mime = FIGURE_TYPES[path.suffix.lower()]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def figure_html(path: Path, caption: str | None = None) -> str:
    try:
        src = data_uri(path)
    except OSError as err:  # a figure deleted or unreadable since the listing: say so, keep the page
        return f'<p class="empty">{escape(path.name)}: cannot read ({escape(str(err))})</p>'
    name = escape(caption or path.name)
    return f'<figure><img src="{src}" alt="{name}"><figcaption>{name}</figcaption></figure>'


def key_value_table(items: dict) -> str:
    if not items:
        return '<p class="empty">none</p>'
    # None is spelled as in params.json, so an unset option does not look like a missing one
    rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape('null' if v is None else format_cell(v))}</td></tr>"
                   for k, v in items.items())
    return f'<table class="kv">{rows}</table>'


def cell_html(value) -> str:
    value_number = number(value)
    if value_number is not None and math.isfinite(value_number):
        return f'<td class="num" data-value="{value_number!r}">{escape(format_cell(value))}</td>'
    return f"<td>{escape(format_cell(value))}</td>"


def seconds(value) -> str:
    value = number(value)
    return "" if value is None else f"{value:.1f} s" if value >= 1 else f"{value * 1000:.0f} ms"


# -- the loss curve drawn from metrics.jsonl ---------------------------------------------------
def loss_series(history: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """label -> [(epoch, loss)], one train and one held-out line per model (tag)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in history:
        epoch = number(row.get("epoch"))
        for key, label in (("loss", "train"), ("test_loss", "held-out")):
            value = number(row.get(key))
            if epoch is not None and value is not None and math.isfinite(value):
                name = f"{row['tag']} {label}" if row.get("tag") else label
                series.setdefault(name, []).append((epoch, value))
    return series


def loss_svg(history: list[dict], width: int = 520, height: int = 260) -> str:
    """An inline SVG of the loss per epoch (log scale when the losses span two decades)."""
    series = loss_series(history)
    if not series:
        return ""
    points = [p for line in series.values() for p in line]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    log = min(ys) > 0 and max(ys) / min(ys) > 100
    scale_y = (lambda v: math.log10(v)) if log else (lambda v: v)
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = scale_y(min(ys)), scale_y(max(ys))
    y1 = y1 if y1 > y0 else y0 + 1
    left, right, top, bottom = 56, 130, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (1 - (scale_y(y) - y0) / (y1 - y0)) * plot_h

    parts = [f'<svg class="loss-curve" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="loss per epoch">',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#d0d5dd"/>',
             f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{max(ys):.3g}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{min(ys):.3g}</text>',
             f'<text x="{left}" y="{height - 8}">{x0:g}</text>',
             f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{x1:g}</text>',
             f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">epoch'
             f'{" (loss on a log scale)" if log else ""}</text>']
    for i, (label, line) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        if len(line) == 1:
            parts.append(f'<circle cx="{px(line[0][0]):.1f}" cy="{py(line[0][1]):.1f}" r="3" fill="{color}"/>')
        else:
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        legend_y = top + 12 + 16 * i
        parts.append(f'<line x1="{left + plot_w + 10}" y1="{legend_y - 4}" x2="{left + plot_w + 28}" '
                     f'y2="{legend_y - 4}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{left + plot_w + 32}" y="{legend_y}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- sections ------------------------------------------------------------------------------
def anchor(index: int) -> str:
    return f"run-{index}"


def runs_table_html(runs: list[dict]) -> str:
    columns, rows = table(runs)
    head = "".join(f'<th scope="col" title="click to sort">{escape(c)}</th>' for c in columns)
    body = []
    for index, (run, row) in enumerate(zip(runs, rows)):
        cells = []
        for column in columns:
            if column == "run":
                cells.append(f'<td><a href="#{anchor(index)}">{escape(run["run"])}</a></td>')
            else:
                cells.append(cell_html(row[column]))
        body.append(f'<tr data-experiment="{escape(run["experiment"])}" data-target="{anchor(index)}">'
                    f'{"".join(cells)}</tr>')
    return (f'<div class="wide"><table class="runs" id="runs-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def loss_html(run: dict) -> str:
    loss_png = run["path"] / "figures" / "loss.png"
    if loss_png in run["figures"]:
        return figure_html(loss_png, "loss.png")
    svg = loss_svg(run["history"])
    if svg:
        return f"<figure>{svg}<figcaption>drawn from metrics.jsonl</figcaption></figure>"
    return '<p class="empty">no epochs logged yet</p>'


def run_section(index: int, run: dict) -> str:
    status = run["status"]
    meta = [escape(run["id"])]
    for label, value in (("device", run["device"]), ("seed", run["seed"]), ("wall", seconds(run["wall_s"])),
                         ("training", seconds(run["train_s"])), ("epochs logged", len(run["history"]) or None)):
        if value not in (None, ""):
            meta.append(f"{label} {escape(str(value))}")
    if run["study"] is not None:
        meta.append(f"study {escape(str(run['study']))}, trial {escape(str(run['trial']))}")
    best = run["best"]
    best_line = ""
    if best.get("metric") is not None and best.get("value") is not None:
        best_line = (f'<p class="meta">best {escape(str(best["metric"]))} = {escape(format_cell(best.get("value")))}'
                     f' at epoch {escape(format_cell(best.get("epoch")))}</p>')
    loss_png = run["path"] / "figures" / "loss.png"
    others = [f for f in run["figures"] if f != loss_png]
    root_figures = run["path"] / "figures"
    gallery = "".join(figure_html(f, f.relative_to(root_figures).as_posix()) for f in others)
    metrics_title = "Metrics" if run["finished"] else "Metrics (last logged epoch)"
    return f"""
<section class="card run" id="{anchor(index)}" data-experiment="{escape(run['experiment'])}">
  <h3>{escape(run['experiment'])} / {escape(run['run'])}<span class="badge {escape(status)}">{escape(status)}</span></h3>
  <p class="meta">{' · '.join(meta)}</p>
  <div class="cols">
    <div><h4>Parameters</h4>{key_value_table(run['params'])}</div>
    <div><h4>{metrics_title}</h4>{key_value_table(run['metrics'])}{best_line}</div>
    <div><h4>Loss</h4>{loss_html(run)}</div>
  </div>
  <h4>Figures</h4>
  {f'<div class="gallery">{gallery}</div>' if gallery else '<p class="empty">no other figures</p>'}
</section>"""


def study_section(study: dict, runs: list[dict]) -> str:
    trials = [(i, r) for i, r in enumerate(runs) if r["study"] is not None and str(r["study"]) == study["name"]]
    metric = study.get("metric")
    facts = {k: study.get(k) for k in ("metric", "direction", "best_value", "best_trial", "n_trials")
             if study.get(k) is not None}
    trial_rows = "".join(
        f'<tr><td>{escape(format_cell(r["trial"]))}</td><td><a href="#{anchor(i)}">{escape(r["run"])}</a></td>'
        f'{cell_html(r["metrics"].get(metric)) if metric else "<td></td>"}'
        f'<td>{escape(r["status"])}</td></tr>'
        for i, r in sorted(trials, key=lambda t: (number(t[1]["trial"]) is None, number(t[1]["trial"]) or 0)))
    trial_table = (f'<table class="kv"><tr><td>trial</td><td>run</td><td>{escape(str(metric or ""))}</td>'
                   f'<td>status</td></tr>{trial_rows}</table>' if trials else '<p class="empty">no trial runs below this folder</p>')
    best_params = study.get("best_params") if isinstance(study.get("best_params"), dict) else {}
    figures = "".join(figure_html(f) for f in study["figures"])
    return f"""
<section class="card study" data-study="{escape(study['name'])}">
  <h3>{escape(study['name'])}</h3>
  <p class="meta">{escape(study['path'].as_posix())}</p>
  <div class="cols">
    <div><h4>Best</h4>{key_value_table(facts)}</div>
    <div><h4>Best parameters</h4>{key_value_table(best_params)}</div>
    <div><h4>Trials</h4>{trial_table}</div>
  </div>
  <h4>History</h4>
  {f'<div class="gallery">{figures}</div>' if figures else '<p class="empty">no history figure</p>'}
</section>"""


def page(root: Path, runs: list[dict], studies: list[dict]) -> str:
    experiments = sorted({r["experiment"] for r in runs})
    unfinished = sum(not r["finished"] for r in runs)
    options = "".join(f'<option value="{escape(e)}">{escape(e)}</option>' for e in experiments)
    summary = (f"{len(runs)} run{'s' if len(runs) != 1 else ''} of {len(experiments)} experiment{'s' if len(experiments) != 1 else ''}"
               f"{f', {unfinished} unfinished' if unfinished else ''}"
               f"{f', {len(studies)} search stud' + ('ies' if len(studies) != 1 else 'y') if studies else ''}")
    studies_html = ("<h2>Search studies</h2>" + "".join(study_section(s, runs) for s in studies)) if studies else ""
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>torchclassics report: {escape(root.as_posix())}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>torchclassics report</h1><p>{escape(summary)} · {escape(str(root.resolve()))} · generated {escape(generated)}</p></header>
<main>
<h2>All runs</h2>
<div class="controls">
  <label>experiment <select id="experiment-filter"><option value="">all</option>{options}</select></label>
  <label>filter <input id="run-search" type="search" placeholder="text in a row"></label>
  <span id="shown-count" class="meta">{len(runs)} of {len(runs)} runs shown</span>
</div>
{runs_table_html(runs)}
{studies_html}
<h2>Runs</h2>
{"".join(run_section(i, r) for i, r in enumerate(runs))}
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_report(root: str | Path | None = None, output: str | Path | None = None) -> Path:
    """Write the page (default ``<root>/report.html``) and return its path."""
    root = existing_root(runs_root() if root is None else root)
    runs = collect_runs(root)
    studies = collect_studies(root)
    output = Path(output) if output is not None else root / "report.html"
    if output.is_dir():
        raise UserError(f"-o {output} is a folder; give a file name such as {output / 'report.html'}.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(output, page(root, runs, studies))
    except OSError as err:
        raise UserError(f"cannot write the report to {output}: {err.strerror or err}; choose another -o.") from None
    return output

