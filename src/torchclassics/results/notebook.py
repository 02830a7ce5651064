"""A finished run as a notebook shows it: its metrics as a table and its figures as small images.

Jupyter calls ``_repr_html_`` on the last value of a cell; ``RunResult`` answers with :func:`run_html`.
Figures are embedded as data URIs (a notebook moved elsewhere still shows them), each shrunk to a
thumbnail so that a saved notebook stays small; animations are left out (their first frame is a
figure of its own already).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..rundir.reader import RunFolder

THUMBNAIL_PX = 360  # the longest side of an embedded figure
PALETTE = 256  # a thumbnail's colours: plots have few, and a palette halves the size (cnn_mnist: 88 -> 40 KB)
MOST_FIGURES = 6  # a run with more figures shows the first ones and names the folder
STILL_SUFFIXES = (".png", ".jpg", ".jpeg")


def run_html(experiment: str, run_dir: Path, metrics: dict) -> str:
    """The run's heading, its metrics table and its figures, as one HTML fragment."""
    figures = [path for path in RunFolder(run_dir).figures() if path.suffix.lower() in STILL_SUFFIXES]
    parts = [f"<div class='torchclassics-run'><b>{html.escape(experiment)}</b> "
             f"<code>{html.escape(str(run_dir))}</code>", metrics_table(metrics)]
    for path in figures[:MOST_FIGURES]:
        parts.append(figure_tag(path))
    if len(figures) > MOST_FIGURES:
        parts.append(f"<p>{len(figures) - MOST_FIGURES} more figures in "
                     f"<code>{html.escape(str(figures[0].parent))}</code></p>")
    parts.append("</div>")
    return "\n".join(parts)


def metrics_table(metrics: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(name))}</td><td>{html.escape(shown(value))}</td></tr>"
                   for name, value in metrics.items())
    return f"<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"


def shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def figure_tag(path: Path) -> str:
    """An <img> holding a PNG thumbnail of the figure, its file name as the alt text and title."""
    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=PALETTE).save(buffer, format="PNG", optimize=True)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    name = html.escape(path.name)
    return f"<img src='data:image/png;base64,{data}' alt='{name}' title='{name}' style='margin:4px'>"
