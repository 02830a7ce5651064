"""An image file of one handwritten digit -> a 28x28 uint8 digit prepared the way MNIST's were.

MNIST digits are light on dark, size-normalised into a 20x20 box (aspect kept,
anti-aliased) and centred by their centre of mass in a 28x28 field. A photo or
drawing of a digit gets the same treatment here, so the trained nets see what they
were trained on:

1. any mode (RGBA over white, palette, 16-bit, CMYK) -> 8-bit grey, large pictures reduced;
2. dark ink on light paper (the border is brighter than mid-grey) -> inverted;
3. the paper's level is subtracted and the contrast stretched to 0..255;
4. the ink's bounding box is scaled to fit 20x20 and placed by centre of mass.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .images import UnusableImage, open_image

BOX = 20       # MNIST's size-normalisation box
SIDE = 28      # the field the box sits in
INK = 0.25     # a pixel above this fraction of the brightest one counts as ink for the bounding box
# Larger pictures are reduced (whole factors, on the 8-bit pixels) until their shorter side is near
# this: a digit filling a tenth of it still spans 50 pixels for the 20-pixel box, and the float
# work below stays a few MB whatever the file (a 4000 x 4000 photo once took 370 MB).
WORK_SIDE = 512


class DigitError(ValueError):
    """This file holds no usable digit image; the message says why."""


def open_grey(path: Path) -> np.ndarray:
    """The image as float grey levels 0..255, transparency composited over white (drawn-on-paper)."""
    try:
        image = open_image(path, min_side=WORK_SIDE, max_side=4 * WORK_SIDE)
    except UnusableImage as err:  # every failure of the file: missing, not an image, truncated, too large
        raise DigitError(str(err)) from None
    if image.mode in ("LA", "RGBA"):
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float64)


def border_mean(pixels: np.ndarray) -> float:
    edges = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(edges.mean())


def light_on_dark(pixels: np.ndarray) -> np.ndarray:
    """Ink bright, paper 0: inverted when the border (the paper) is light, paper level removed."""
    if border_mean(pixels) > 127.5:
        pixels = 255.0 - pixels
    paper = float(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))
    ink = np.clip(pixels - paper, 0, None)
    top = ink.max()
    if top < 16:  # less than ~6% contrast: noise, not a digit
        raise DigitError("no digit found (the image is blank)")
    return ink * (255.0 / top)


def fit_box(ink: np.ndarray) -> Image.Image:
    """The ink's bounding box, scaled (aspect kept, anti-aliased) so its longer side is 20 pixels."""
    rows = np.flatnonzero((ink > INK * 255).any(axis=1))
    cols = np.flatnonzero((ink > INK * 255).any(axis=0))
    crop = ink[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return Image.fromarray(crop.astype(np.uint8), mode="L").resize(size, Image.Resampling.LANCZOS)


def centre_by_mass(digit: Image.Image) -> np.ndarray:
    """Paste into 28x28 so that the centre of mass lands on the centre, as MNIST was made."""
    box = np.asarray(digit, dtype=np.float64)
    total = box.sum() or 1.0
    ys, xs = np.indices(box.shape)
    cy, cx = (ys * box).sum() / total, (xs * box).sum() / total
    top = int(round(SIDE / 2 - 0.5 - cy))
    left = int(round(SIDE / 2 - 0.5 - cx))
    top = min(max(top, 0), SIDE - box.shape[0])  # never push ink off the field
    left = min(max(left, 0), SIDE - box.shape[1])
    field = np.zeros((SIDE, SIDE), dtype=np.float64)
    field[top: top + box.shape[0], left: left + box.shape[1]] = box
    return field


def load_digit(path: str | Path) -> torch.Tensor:
    """uint8 (28, 28) of the digit in ``path``, light on dark like MNIST. Raises :class:`DigitError`."""
    ink = light_on_dark(open_grey(Path(path)))
    field = centre_by_mass(fit_box(ink))
    return torch.from_numpy(np.clip(np.rint(field), 0, 255).astype(np.uint8))
