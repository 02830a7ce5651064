"""Static figures, drawn with matplotlib's object API (no pyplot global state, no GUI backend).

Every figure is written with :func:`save`, through ``torchclassics.atomic``: a crash or a full
disk leaves the previous file or the new one, never half of one."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator

from .. import progress
from ..core.files import replaced_atomically

# Fewer epochs than this, with every step's loss at hand: the loss figure's x axis is the step,
# so a one-epoch run shows its hundreds of steps instead of one point.
FEW_EPOCHS = 10
# Up to this many points a curve gets markers, so one or two points still show.
MARKED_POINTS = 20
# Losses spanning this factor or more get a log axis (at least two labelled decades).
LOG_SPAN = 100.0


def new_figure(width: float = 6.4, height: float = 4.8) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


DRAWN_BY = "torchclassics"  # the Software field of every PNG the package draws


def save(fig: Figure, path: Path) -> Path:
    """Lay ``fig`` out and write it (format from the suffix) atomically."""
    path = Path(path)
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, for which savefig walks the whole
    # figure once more before drawing it (a dry run for the layout): without it, 20% faster.
    fig.set_layout_engine(None)
    kind = path.suffix.lstrip(".").lower() or "png"
    with replaced_atomically(path) as tmp:  # a PNG says who drew it: a lesson's folder replaces only its own
        fig.savefig(tmp, format=kind, metadata={"Software": DRAWN_BY} if kind == "png" else None)
    progress.part_done(path.name)  # "drawing figures" names each slow one
    return path


def drawn_by_us(path: Path) -> bool:
    """Whether ``path`` is a PNG that :func:`save` wrote."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(image.info.get("Software", "")).startswith(DRAWN_BY)
    except Exception:  # not an image, unreadable, a folder: not ours
        return False


# -- losses ---------------------------------------------------------------------------------
def _values(history: list[dict], key: str) -> np.ndarray:
    return np.array([row.get(key, np.nan) for row in history], dtype=float)


def _last(values) -> str:
    finite = [v for v in np.asarray(values, dtype=float) if math.isfinite(v)]
    return f"{finite[-1]:.4g}" if finite else "n/a"


def _per_step(history: list[dict], step_losses) -> bool:
    """Whether the figure's x axis is the optimizer step (few epochs and every step's loss known)."""
    return bool(step_losses) and 0 < len(history) < FEW_EPOCHS and all("step" in row for row in history)


def loss_figure(history: list[dict], title: str = "", *, loss: str = "loss", held_out: str = "test",
                step_losses: list[float] | None = None) -> Figure:
    """Training and held-out ``loss`` (and ``accuracy`` beside it when the rows have one).

    ``history``: one row per epoch (``epoch``, ``step`` = optimizer steps so far, ``<loss>``,
    ``<held_out>_<loss>``, maybe ``accuracy`` and ``<held_out>_accuracy``). With fewer than
    ``FEW_EPOCHS`` epochs and ``step_losses`` (every step's training loss), the x axis is the
    step: each step's loss as a thin line, the epoch means and held-out values as points at
    the step their epoch ended. Otherwise one point per epoch. Legends give the last values,
    so even a one-point curve says something."""
    if not any(loss in row or f"{held_out}_{loss}" in row for row in history):
        return _nothing_to_plot(title or loss, loss, f"the epoch rows hold no '{loss}' or '{held_out}_{loss}' "
                                f"(they hold {', '.join(sorted(history[-1]))})" if history else "no epoch finished")
    per_step = _per_step(history, step_losses)
    has_accuracy = any("accuracy" in row or f"{held_out}_accuracy" in row for row in history)
    fig = new_figure(10 if has_accuracy else 6.4, 4)
    x = _values(history, "step") if per_step else _values(history, "epoch")
    marker = "o" if per_step else marker_for(len(history))
    ax = fig.add_subplot(1, 2 if has_accuracy else 1, 1)
    if per_step:
        steps = np.arange(1, len(step_losses) + 1)
        ax.plot(steps, step_losses, lw=0.8, alpha=0.6, color="tab:blue",
                label=f"train, each step (last {_last(step_losses)})")
    train_label = "train, epoch mean" if per_step else "train"
    series = [(loss, train_label, "tab:blue"), (f"{held_out}_{loss}", held_out, "tab:orange")]
    _plot_series(ax, history, x, series, marker)
    curves = [_values(history, key) for key, _, _ in series] + ([np.asarray(step_losses, float)] if per_step else [])
    log_scale_if_wide(ax, np.concatenate(curves))
    ax.set(xlabel="step" if per_step else "epoch", ylabel=loss, title=title or loss)
    # One epoch of several steps gets the steps' ticks, not its last step alone.
    whole_number_ticks(ax, np.arange(1, len(step_losses) + 1) if per_step else x)
    ax.legend(fontsize=8)
    if has_accuracy:  # on the loss's x range: one epoch's points sit at its last step, not alone mid-axes
        ax = fig.add_subplot(1, 2, 2, sharex=ax)
        _plot_series(ax, history, x, [("accuracy", train_label, "tab:blue"),
                                      (f"{held_out}_accuracy", held_out, "tab:orange")], marker)
        ax.set(xlabel="step" if per_step else "epoch", ylabel="accuracy", title="accuracy")
        ax.legend(fontsize=8)
    return fig


def marker_for(points: int) -> str | None:
    """A dot on every point of a short curve, so that one or two points still show."""
    return "o" if points <= MARKED_POINTS else None


def whole_number_ticks(ax, positions) -> None:
    """x ticks at whole numbers only (epochs, steps, episodes: a short run would show 2.5); a
    single position gets its one tick, not 0.96 ... 1.04."""
    positions = np.unique(np.asarray(positions, dtype=float))
    ax.xaxis.set_major_locator(FixedLocator(positions) if len(positions) == 1 else MaxNLocator(integer=True))


def _nothing_to_plot(title: str, loss: str, why: str) -> Figure:
    fig = new_figure(6.4, 4)
    ax = fig.add_subplot(1, 1, 1)
    ax.text(0.5, 0.5, f"nothing to plot:\n{why}", ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set(xlabel="epoch", ylabel=loss, title=title)
    return fig


def log_scale_if_wide(ax, values: np.ndarray, span: float = LOG_SPAN) -> None:
    """A log y axis for values spanning ``span`` or more, labelled plainly (0.01, 0.1, 1) with a
    light grid: decades for LOG_SPAN or more, else also 2 and 5 times each decade, so that at
    least two ticks are labelled. Minor ticks (a Tick is two texts and two lines to make) were
    40% of the loss figure's time, and plain labels spare matplotlib's math-text parser, 0.3 s
    the first time."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() >= span * values.min():
        ax.set_yscale("log")
        wide = values.max() >= LOG_SPAN * values.min()
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.grid(True, which="major", axis="y", alpha=0.3)


def _plot_series(ax, history: list[dict], x: np.ndarray, series, marker) -> None:
    for key, label, colour in series:
        if any(key in row for row in history):
            values = _values(history, key)
            ax.plot(x, values, marker=marker, ms=4, color=colour, label=f"{label} (last {_last(values)})")


def metric_curves(history: list[dict], metrics: list[str], path: Path, title: str = "", *,
                  held_out: str = "test") -> Path:
    """One panel per metric, train and held-out per epoch (``f1``, ``mse``: whatever a Task measures)."""
    fig = new_figure(4.2 * len(metrics), 3.8)
    x = _values(history, "epoch")
    marker = marker_for(len(history))
    for index, name in enumerate(metrics, start=1):
        ax = fig.add_subplot(1, len(metrics), index)
        _plot_series(ax, history, x, [(name, "train", "tab:blue"), (f"{held_out}_{name}", held_out, "tab:orange")],
                     marker)
        whole_number_ticks(ax, x)
        ax.set(xlabel="epoch", ylabel=name, title=f"{title}: {name}" if title else name)
        ax.legend(fontsize=8)
    return save(fig, path)


def loss_curves(history: list[dict], path: Path, title: str = "", *, loss: str = "loss", held_out: str = "test",
                step_losses: list[float] | None = None) -> Path:
    """:func:`loss_figure`, written to ``path``."""
    return save(loss_figure(history, title, loss=loss, held_out=held_out, step_losses=step_losses), path)


# -- matrices and images ------------------------------------------------------------------------
def confusion_matrix(true, predicted, labels: list[str], path: Path, title: str = "confusion matrix") -> Path:
    """:func:`confusion_figure`, written to ``path``."""
    return save(confusion_figure(true, predicted, labels, title), path)


def confusion_figure(true, predicted, labels: list[str], title: str = "confusion matrix") -> Figure:
    """Counts of true (rows) against predicted (columns) labels, each count written in its cell."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    matrix = sk_confusion(np.asarray(true), np.asarray(predicted), labels=list(range(len(labels))))
    size = max(4.0, 0.5 * len(labels) + 2)
    fig = new_figure(size, size)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    if _labels_overlap(labels, size):  # e.g. char_rnn_names' 15 languages
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set(ha="right", rotation_mode="anchor")  # each slanted name ends under its column
    for i in range(len(labels)):
        for j in range(len(labels)):
            # Inside the axes: left out of tight_layout's measuring, a third of this figure's time.
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", in_layout=False,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
    return fig


def _labels_overlap(labels: list[str], figure_inches: float) -> bool:
    """Whether the longest x label is wider than its column, roughly: the columns share the
    figure's width less about 1.5 inches of margins; a character at 10 points is ~0.08 inch."""
    column = (figure_inches - 1.5) / max(1, len(labels))
    return max((len(str(label)) for label in labels), default=0) * 0.08 > column


def mosaic(images: np.ndarray, columns: int, gap: int = 2, fill: float = 255, row_gap: int | None = None) -> np.ndarray:
    """``images`` (n, h, w) or (n, h, w, channels) tiled row by row into one image, ``gap``
    pixels of ``fill`` between columns (``row_gap`` between rows, default ``gap``): one
    ``imshow`` instead of one axes per image, which is what makes a grid of digits cheap to
    draw (an axes costs more than its picture)."""
    images = np.asarray(images)
    count, height, width = images.shape[:3]
    row_gap = gap if row_gap is None else row_gap
    rows = max(1, -(-count // columns))
    out = np.full((rows * (height + row_gap) - row_gap, columns * (width + gap) - gap, *images.shape[3:]), fill,
                  dtype=images.dtype)
    for i, image in enumerate(images):
        top, left = (i // columns) * (height + row_gap), (i % columns) * (width + gap)
        out[top: top + height, left: left + width] = image
    return out


def draw_image_grid(ax, images: np.ndarray, columns: int, titles: list[str] | None = None,
                    colours: list[str] | None = None, gap: int = 2, fontsize: float = 9, **imshow):
    """``images`` as a grid on one axes, each with its title above it. ``imshow``: e.g.
    ``cmap="gray", vmin=0, vmax=255`` for uint8 digits. Returns the image artist, whose
    ``set_data(mosaic(images, columns, gap, fill, row_gap))`` shows other images of that shape."""
    images = np.asarray(images)
    height, width = images.shape[1:3]
    lines = max((title.count("\n") + 1 for title in titles or []), default=0)
    row_gap = gap + round(0.2 * height * lines)  # room for the titles of the next row
    fill = 1.0 if images.dtype.kind == "f" else imshow.get("vmax", 255)
    picture = ax.imshow(mosaic(images, columns, gap, fill, row_gap), **imshow)
    for i, title in enumerate(titles or []):
        x = (i % columns) * (width + gap) + (width - 1) / 2
        y = (i // columns) * (height + row_gap) - 1
        ax.text(x, y, title, ha="center", va="bottom", fontsize=fontsize, color=colours[i] if colours else "black",
                in_layout=i < columns)  # only the first row's titles stick out of the axes
    ax.set_axis_off()
    return picture
