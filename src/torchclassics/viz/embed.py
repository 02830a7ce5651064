"""Pictures of learned representations: t-SNE of a layer (2-D) and an autoencoder's 3-D code."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots import new_figure, save

DIGIT_COLOURS = "tab10"


def tsne(features: np.ndarray, seed: int = 0, start: np.ndarray | None = None, max_iter: int = 500) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of ``features`` (n, d).

    ``start``: the previous frame's embedding, for a GIF. The optimisation then goes on
    from there (no early exaggeration, 250 steps), so successive frames move smoothly
    instead of being rotated or mirrored at random, at half the cost.

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
        model = TSNE(n_components=2, perplexity=perplexity, init=np.asarray(start, dtype=np.float32),
                     early_exaggeration=1.0, max_iter=250, random_state=seed, learning_rate="auto")
    with threadpool_limits(limits=1):
        return model.fit_transform(features)


def _limits(ax, points: np.ndarray) -> None:
    span = np.ptp(points, axis=0) * 0.05 + 1e-6
    ax.set(xlim=(points[:, 0].min() - span[0], points[:, 0].max() + span[0]),
           ylim=(points[:, 1].min() - span[1], points[:, 1].max() + span[1]), xticks=[], yticks=[])


def draw_tsne(ax, points: np.ndarray, labels: np.ndarray, title: str = "", as_text: bool = True) -> None:
    """Points coloured by true label. ``as_text``: the seed's picture, each point written as its
    digit; else dots with a legend (ten times faster to draw, for GIF frames)."""
    import matplotlib

    colours = matplotlib.colormaps[DIGIT_COLOURS]
    labels = np.asarray(labels).astype(int)
    if as_text:
        for (x, y), label in zip(points, labels):
            ax.text(x, y, str(label), color=colours(label % 10), fontsize=7, ha="center", va="center",
                    fontweight="bold")
    else:
        for digit in range(10):
            chosen = labels == digit
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=colours(digit), label=str(digit))
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.5, frameon=False)
    _limits(ax, points)
    ax.set_title(title, fontsize=10)


def tsne_figure(points: np.ndarray, labels: np.ndarray, path: Path, title: str = "") -> Path:
    fig = new_figure(6, 6)
    draw_tsne(fig.add_subplot(1, 1, 1), points, labels, title)
    return save(fig, path)


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
