"""Pictures of learned representations: t-SNE of a layer (2-D) and an autoencoder's 3-D code."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .animate import FrameWriter
from .plots import new_figure, save

DIGIT_COLOURS = "tab10"
STOP_AT_FIRST_CHECK = 1e30  # a min_grad_norm no gradient is above


def tsne(features: np.ndarray, seed: int = 0, start: np.ndarray | None = None, max_iter: int = 500) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of ``features`` (n, d).

    ``start``: the previous frame's embedding, for a GIF. The optimisation then goes on
    from there without early exaggeration for 100 steps, so successive frames move smoothly
    instead of being rotated or mirrored at random, at a fifth of the cost of a full run.
    From the previous frame's layout, 100 steps end within 1% of the divergence that 250
    reach (measured on the CNN's MNIST features).

    Runs on one thread: for a few hundred points that is as fast as two, and far faster
    on a busy machine (OpenMP threads wait for each other when the cores are shared:
    0.8 s vs 9 s measured on 2 loaded cores)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float32)
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3.0)))  # must stay below n_samples
    if start is None:
        model = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=max(250, max_iter),
                     random_state=seed, learning_rate="auto")
    else:
        # scikit-learn runs at least 250 steps (max_iter >= 250) but stops at a convergence check
        # (every 50 steps, in each of its two phases) once the gradient norm is under
        # min_grad_norm: a huge one stops at the first check of each phase, after 100 steps.
        model = TSNE(n_components=2, perplexity=perplexity, init=np.asarray(start, dtype=np.float32),
                     early_exaggeration=1.0, max_iter=250, min_grad_norm=STOP_AT_FIRST_CHECK, random_state=seed,
                     learning_rate="auto")
    with threadpool_limits(limits=1):
        return model.fit_transform(features)


def _limits(ax, points: np.ndarray) -> None:
    span = np.ptp(points, axis=0) * 0.05 + 1e-6
    ax.set(xlim=(points[:, 0].min() - span[0], points[:, 0].max() + span[0]),
           ylim=(points[:, 1].min() - span[1], points[:, 1].max() + span[1]))


def _tsne_axes(ax, title: str) -> None:
    # t-SNE's coordinates have no unit or meaning of their own: named, without ticks.
    ax.set(xticks=[], yticks=[], xlabel="t-SNE 1", ylabel="t-SNE 2")
    ax.set_title(title, fontsize=10)


def glyph(text: str):
    """``text`` as a marker, centred: drawn like a dot (one path for all points), without the
    math-text parser that ``marker="$3$"`` starts (0.3 s the first time)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MarkerPath
    from matplotlib.textpath import TextPath

    outline = TextPath((0, 0), text, size=1, prop=FontProperties(weight="bold"))
    centre = (outline.vertices.min(axis=0) + outline.vertices.max(axis=0)) / 2
    return MarkerPath(outline.vertices - centre, outline.codes)


def draw_tsne(ax, points: np.ndarray, labels: np.ndarray, title: str = "", as_text: bool = True) -> list:
    """Points coloured by true label, one scatter per label, with a legend. ``as_text``: each
    point drawn as its digit (the course notes' picture; the digit is a marker, so 500 of them draw
    as fast as dots, where 500 texts took a second); else dots. Returns the scatters, in the
    order of ``np.unique(labels)``."""
    import matplotlib

    colours = matplotlib.colormaps[DIGIT_COLOURS]
    points, labels = np.asarray(points), np.asarray(labels).astype(int)
    scatters = []
    for label in np.unique(labels):
        chosen = labels == label
        style = dict(marker=glyph(str(label)), s=45, linewidths=0) if as_text else dict(s=8)
        scatters.append(ax.scatter(points[chosen, 0], points[chosen, 1], color=colours(label % 10),
                                   label=str(label), **style))
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.0 if as_text else 1.5,
              frameon=False, title="digit", title_fontsize=8)
    _limits(ax, points)
    _tsne_axes(ax, title)
    return scatters


def tsne_figure(points: np.ndarray, labels: np.ndarray, path: Path, title: str = "") -> Path:
    fig = new_figure(6.8, 6)
    draw_tsne(fig.add_subplot(1, 1, 1), points, labels, title)
    return save(fig, path)


class TsneAnimation(FrameWriter):
    """A GIF of t-SNE maps of the same points (one map per training snapshot): the dots and the
    legend are made once, and each :meth:`frame` moves the dots and rescales the axes."""

    def __init__(self, labels: np.ndarray, size: tuple[float, float] = (6, 5)):
        super().__init__(size)
        self.labels = np.asarray(labels).astype(int)
        self.ax = self.figure.add_subplot(1, 1, 1)
        self.scatters = draw_tsne(self.ax, np.zeros((len(self.labels), 2)), self.labels, as_text=False)
        self.changing(*self.scatters, self.ax.title)

    def frame(self, points: np.ndarray, title: str = "") -> np.ndarray:
        points = np.asarray(points)
        for scatter, label in zip(self.scatters, np.unique(self.labels)):
            scatter.set_offsets(points[self.labels == label])
        _limits(self.ax, points)  # no ticks: the copied background does not depend on the limits
        self.ax.set_title(title, fontsize=10)
        return self.grab()


def draw_codes_3d(ax, codes: np.ndarray, labels: np.ndarray, title: str = "") -> None:
    """A scatter of 3-d codes coloured by digit, on an ``add_subplot(projection='3d')`` axes."""
    scatter = ax.scatter(codes[:, 0], codes[:, 1], codes[:, 2], c=labels, cmap=DIGIT_COLOURS, vmin=-0.5, vmax=9.5,
                         s=10, depthshade=False)
    ax.set(xlabel="code 1", ylabel="code 2", zlabel="code 3", title=title)
    return scatter


def codes_3d_figure(codes: np.ndarray, labels: np.ndarray, path: Path, title: str = "") -> Path:
    """``Axes3D(fig)`` draws nothing on current matplotlib; ``add_subplot(projection='3d')`` does."""
    fig = new_figure(7, 6)
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    scatter = draw_codes_3d(ax, np.asarray(codes), np.asarray(labels), title)
    colourbar = fig.colorbar(scatter, ax=ax, ticks=range(10), shrink=0.7, pad=0.1)
    colourbar.set_label("digit")
    return save(fig, path)
