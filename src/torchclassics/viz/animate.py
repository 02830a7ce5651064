"""Animated GIFs of training (the seeds' live plots, as files).

One matplotlib figure serves every frame (:class:`FrameWriter`): its layout is computed
once, and what stays the same from frame to frame (axes, ticks, labels, legend, data points)
can be drawn once and copied, so a frame costs only the artists that change. Frames are
written by Pillow with one palette for the whole GIF, which is several times faster than
quantising each frame on its own and keeps colours from flickering between frames."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from .. import progress
from ..core.files import replaced_atomically
from .plots import new_figure

HOLD_LAST_MS = 1500  # the last frame stays on screen before the loop restarts
PALETTE_SAMPLES = 8  # frames looked at to choose the GIF's colours


class FrameWriter:
    """Frames of one figure, collected as RGB arrays of identical size, then written as a GIF.

    Two ways to draw a frame:

    * redraw: ``ax = writer.axes()`` (the figure's one axes, cleared), draw, ``writer.grab()``;
    * update (blitting): draw on ``writer.figure`` what stays the same once, name the artists
      that change with ``writer.changing(line, ax.title)``, then for every frame update them
      (``set_data``, ``set_text``, ``set_offsets`` ...) and ``writer.grab()``. Everything not
      named is drawn once and copied; it must look the same in every frame. Named artists are
      drawn over it in the order given: name a legend after the image it lies on.

    The layout (``tight_layout``) is computed at the first grab and kept for every frame."""

    def __init__(self, size: tuple[float, float] = (5, 4)):
        self.figure = new_figure(*size)
        self.frames: list[np.ndarray] = []
        self._axes = None
        self._changing: list = []
        self._background = None

    def axes(self, **subplot):
        """The figure's one axes, cleared for a new frame (``subplot``: e.g. ``projection="3d"``
        on the first call)."""
        if self._axes is None:
            self._axes = self.figure.add_subplot(1, 1, 1, **subplot)
        else:
            self._axes.cla()
        return self._axes

    def changing(self, *artists) -> None:
        """Artists redrawn at every grab; the rest of the figure is drawn at the first grab only."""
        for artist in artists:
            artist.set_animated(True)  # left out of the full draw, the copied background
        self._changing.extend(artists)

    def grab(self) -> np.ndarray:
        """Render the figure as it is now into the next frame (an RGB array) and return it."""
        canvas = self.figure.canvas
        if not self.frames:
            self.figure.tight_layout()
        if self._background is None or not self._changing:
            canvas.draw()
            if self._changing:
                self._background = canvas.copy_from_bbox(self.figure.bbox)
        else:
            canvas.restore_region(self._background)
        for artist in self._changing:
            self.figure.draw_artist(artist)
        frame = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        self.frames.append(frame)
        return frame

    def write(self, path: Path, fps: float = 8.0) -> Path:
        """The frames grabbed so far as a GIF (see :func:`write_gif`)."""
        return write_gif(self.frames, path, fps)

    def write_last(self, path: Path) -> Path:
        """The last frame as a PNG still (the figure beside the GIF, at no extra drawing)."""
        if not self.frames:
            raise ValueError(f"FrameWriter.write_last: no frame grabbed yet for {path}")
        return write_png(self.frames[-1], path)


def animate(items: Iterable, draw: Callable, path: Path, size=(5, 4), fps: float = 8.0) -> Path:
    """One frame per item: ``draw(ax, item)`` on the cleared axes of one reused figure, written
    as a GIF. Raises ValueError for no items. :class:`FrameWriter`'s update mode is faster."""
    writer = FrameWriter(size)
    for item in items:
        draw(writer.axes(), item)
        writer.grab()
    return writer.write(path, fps)


def write_gif(frames: list[np.ndarray], path: Path, fps: float = 8.0) -> Path:
    """RGB frames (all the same size) as a looping GIF at ``fps``, the last held 1.5 s, written
    atomically. One frame makes a still GIF; no frame raises ValueError (nothing is written)."""
    path = Path(path)
    if not frames:
        raise ValueError(f"write_gif: no frames to write to {path}")
    sizes = {np.shape(frame) for frame in frames}
    if len(sizes) > 1:
        raise ValueError(f"write_gif: frames of different sizes {sorted(sizes)} for {path}; draw them on one figure")
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    palette = shared_palette(images)
    # No dithering: flat plot colours stay flat, and unchanged pixels stay unchanged between
    # frames, which Pillow then leaves out of each frame (smaller file).
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    durations = [round(1000 / fps)] * (len(frames) - 1) + [HOLD_LAST_MS]
    with replaced_atomically(path) as tmp:
        # A list of durations with a single frame trips Pillow's GIF writer: give it a number.
        indexed[0].save(tmp, format="GIF", save_all=True, append_images=indexed[1:], loop=0, optimize=False,
                        duration=durations if len(durations) > 1 else durations[0])
    progress.part_done(path.name)
    return path


def shared_palette(images: list[Image.Image], colours: int = 256) -> Image.Image:
    """One palette for every frame, chosen from up to PALETTE_SAMPLES frames spread over the
    animation (first and last included) stacked into one picture. Fast octree: six times
    faster than median cut on plot frames, and closer to their colours (measured)."""
    step = max(1, -(-len(images) // PALETTE_SAMPLES))
    sample = images[::step] + ([images[-1]] if (len(images) - 1) % step else [])
    stacked = np.concatenate([np.asarray(image) for image in sample], axis=0)
    return Image.fromarray(stacked).quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def write_png(frame: np.ndarray, path: Path) -> Path:
    """An RGB array as a PNG, written atomically."""
    with replaced_atomically(path) as tmp:
        Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(tmp, format="PNG")
    progress.part_done(Path(path).name)
    return Path(path)
