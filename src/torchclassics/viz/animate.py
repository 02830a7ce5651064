"""Animated GIFs of training (the seeds' live plots, as files) with imageio."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import imageio.v2 as imageio
import numpy as np

from .plots import new_figure, to_array


def write_gif(frames: list[np.ndarray], path: Path, fps: float = 8.0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hold the last frame so the final fit stays on screen before the loop restarts.
    durations = [1000.0 / fps] * (len(frames) - 1) + [1500.0]
    imageio.mimsave(path, frames, format="GIF", duration=durations, loop=0)
    return path


def animate(items: Iterable, draw: Callable, path: Path, size=(5, 4), fps: float = 8.0) -> Path:
    """One frame per item: ``draw(ax, item)`` on a fresh axes, rendered and written as a GIF."""
    frames = []
    for item in items:
        fig = new_figure(*size)
        draw(fig.add_subplot(1, 1, 1), item)
        frames.append(to_array(fig))
    return write_gif(frames, path, fps)
