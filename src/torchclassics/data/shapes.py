"""A synthetic stand-in for Kaggle's Dogs vs Cats: drawn shapes written as real image files.

Each class is one shape (the first class circles, the second squares, then
triangles, crosses): a bright shape of random hue, size, position and rotation on
a darker noisy background of random hue. Colours are drawn the same way for every
class, so a network must learn shape, not colour. (With the brightness order
random too, a small CNN needs many more epochs before it sees past the colours.)
The folder comes in either layout the ``dogs_vs_cats`` experiment reads, with a
few broken files among the images, as a real download has::

    python -m torchclassics.data.shapes shapes/ --n 1000 --layout kaggle
    torchclassics run dogs_vs_cats --set data_root=shapes

    kaggle:      shapes/cat.0.jpg  shapes/dog.0.jpg  ...
    imagefolder: shapes/cat/0.jpg  shapes/dog/0.jpg  ...
"""
from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross")
LAYOUTS = ("kaggle", "imagefolder")


def _colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        corners = [math.pi / 4 + k * math.pi / 2 for k in range(4)]
        return [(cx + radius * math.cos(a + angle), cy + radius * math.sin(a + angle)) for a in corners]
    if shape == "triangle":
        corners = [-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3)]
        return [(cx + radius * math.cos(a + angle), cy + radius * math.sin(a + angle)) for a in corners]
    raise ValueError(shape)


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``size`` x ``size`` RGB picture of ``shape`` (one of :data:`SHAPES`)."""
    background = _colour(rng, 0, 110)
    noise = rng.normal(0, 18, size=(size, size, 3))
    pixels = np.clip(np.array(background, dtype=float) + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    fill = _colour(rng, 140, 256)
    radius = rng.uniform(0.18, 0.38) * size
    cx, cy = (rng.uniform(radius, size - radius) for _ in range(2))
    angle = rng.uniform(0, math.pi / 2)
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "cross":
        arm = radius / 3
        draw.rectangle([cx - radius, cy - arm, cx + radius, cy + arm], fill=fill)
        draw.rectangle([cx - arm, cy - radius, cx + arm, cy + radius], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, radius, angle), fill=fill)
    return image


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if fmt in ("jpg", "jpeg") else fmt.upper(), quality=90)
    return buffer.getvalue()


def image_path(root: Path, layout: str, label: str, number: int, fmt: str) -> Path:
    """Where image ``number`` of class ``label`` lives in ``layout``."""
    if layout == "kaggle":
        return root / f"{label}.{number}.{fmt}"
    return root / label / f"{number}.{fmt}"


def write_broken_files(root: Path, layout: str, classes: list[str], start: int, fmt: str = "jpg") -> list[Path]:
    """A truncated JPEG, a zero-byte file and a text file named like an image, spread over the classes."""
    whole = _encode(draw_shape(SHAPES[0], 64, np.random.default_rng(0)), "jpg")
    contents = [whole[: len(whole) // 2], b"", b"this is a text file, not an image\n"]
    paths = []
    for k, content in enumerate(contents):
        path = image_path(root, layout, classes[k % len(classes)], start + k, "jpg" if k == 0 else fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        paths.append(path)
    return paths


def make_folder(root, n: int = 1000, layout: str = "kaggle", classes=("cat", "dog"), size: int = 64,
                seed: int = 0, fmt: str = "jpg", broken: bool = True) -> dict:
    """Write ``n`` images (``n // len(classes)`` per class) of ``classes`` in ``layout`` under ``root``.

    Returns ``{"root", "layout", "classes", "images", "broken"}`` (lists of paths). The
    same arguments always write the same pixels."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: choose one of {', '.join(LAYOUTS)}")
    if not 2 <= len(classes) <= len(SHAPES):
        raise ValueError(f"between 2 and {len(SHAPES)} classes, got {len(classes)}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    per_class = n // len(classes)
    images = []
    for number in range(per_class):
        for label, shape in zip(classes, SHAPES):
            path = image_path(root, layout, label, number, fmt)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_encode(draw_shape(shape, size, rng), fmt))
            images.append(path)
    bad = write_broken_files(root, layout, list(classes), per_class, fmt) if broken else []
    return {"root": root, "layout": layout, "classes": list(classes), "images": images, "broken": bad}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torchclassics.data.shapes", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to write (created)")
    parser.add_argument("--n", type=int, default=1000, help="number of images, split evenly over the classes")
    parser.add_argument("--layout", choices=LAYOUTS, default="kaggle")
    parser.add_argument("--classes", default="cat,dog", help="comma-separated class names (2 to 4)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--format", dest="fmt", choices=("jpg", "png"), default="jpg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-broken", action="store_true", help="leave out the three broken files")
    args = parser.parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    try:
        made = make_folder(args.out_dir, args.n, args.layout, classes, args.size, args.seed, args.fmt,
                           broken=not args.no_broken)
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote {len(made['images'])} images of {', '.join(made['classes'])} and {len(made['broken'])} broken "
          f"files in the {args.layout} layout to {made['root']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
