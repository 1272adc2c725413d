"""Line plots and image grids drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from ..files import atomic_write

PLOT_SIZE = (760, 460)
MARGIN = {"left": 78, "right": 150, "top": 40, "bottom": 52}  # the right margin holds the legend
FONT_SIZE = 13
TICKS = 5  # about this many ticks per axis
NICE_STEPS = (1, 2, 2.5, 5, 10)
LINE_WIDTH = 2
# Colour-blind-safe palette (Okabe & Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
GRID_LABEL_HEIGHT = 18


def _font(size: int = FONT_SIZE):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:  # 10^k, then 1-2-5, then every integer mantissa, until at least three ticks fall in range
        for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
            ticks = [m * 10.0**e for e in range(math.floor(low), math.ceil(high) + 1) for m in mantissas
                     if low <= math.log10(m * 10.0**e) <= high]
            if len(ticks) >= 3:
                return ticks
        return [10.0 ** (low + i * (high - low) / (TICKS - 1)) for i in range(TICKS)]
    raw = (high - low) / TICKS if high > low else 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in NICE_STEPS if m * magnitude >= raw)  # 1-2-2.5-5 steps
    return [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if 1e-2 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.0e}"


def line_plot(series: Mapping[str, Sequence[tuple[float, float]]], *, title: str, xlabel: str, ylabel: str,
              log_y: bool = False, size: tuple[int, int] = PLOT_SIZE) -> Image.Image:
    """One line per named series of (x, y) points, with axes, ticks and a legend.

    With ``log_y`` the y axis is log10 (non-positive values are dropped).
    """
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    transform = (lambda y: math.log10(y)) if log_y else (lambda y: y)
    points = {name: [(float(x), transform(y)) for x, y in pts if not log_y or y > 0] for name, pts in series.items()}
    xs = [x for pts in points.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for pts in points.values() for _, y in pts] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    left, right = MARGIN["left"], width - MARGIN["right"]
    top, bottom = MARGIN["top"], height - MARGIN["bottom"]

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    draw.rectangle([left, top, right, bottom], outline="black")
    for tick in _ticks(y0, y1, log_y):
        value = math.log10(tick) if log_y else tick
        _, y = px(x0, value)
        draw.line([left, y, right, y], fill="#e6e6e6")
        draw.text((left - 6, y), _label(tick), fill="black", font=font, anchor="rm")
    for tick in _ticks(x0, x1, False):
        x, _ = px(tick, y0)
        draw.line([x, bottom, x, bottom + 4], fill="black")
        draw.text((x, bottom + 6), _label(round(tick, 6)), fill="black", font=font, anchor="ma")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) / 2, 12), title, fill="black", font=_font(FONT_SIZE + 2), anchor="ma")
    draw.text(((left + right) / 2, height - 18), xlabel, fill="black", font=font, anchor="ma")
    ylabel = f"{ylabel} (log scale)" if log_y else ylabel
    label = Image.new("RGB", (int(draw.textlength(ylabel, font=font)) + 4, FONT_SIZE + 6), "white")
    ImageDraw.Draw(label).text((2, 2), ylabel, fill="black", font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (6, int((top + bottom) / 2 - label.height / 2)))
    for index, (name, pts) in enumerate(points.items()):
        colour = PALETTE[index % len(PALETTE)]
        if len(pts) > 1:
            draw.line([px(x, y) for x, y in pts], fill=colour, width=LINE_WIDTH, joint="curve")
        for x, y in pts[:1] if len(pts) > 1 else pts:
            cx, cy = px(x, y)
            draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=colour)
        ly = top + 10 + index * (FONT_SIZE + 8)
        draw.line([right + 12, ly, right + 36, ly], fill=colour, width=LINE_WIDTH + 1)
        draw.text((right + 42, ly), name, fill="black", font=font, anchor="lm")
    return image


def image_grid(rows: Sequence[Sequence[Tensor]], labels: Sequence[str]) -> Image.Image:
    """Images (3, H, W) in [0, 1], one list per row, with a label above each column."""
    from ..imageio import to_pil

    tiles = [[to_pil(t) for t in row] for row in rows]
    cell_w = max(t.width for row in tiles for t in row)
    cell_h = max(t.height for row in tiles for t in row)
    columns = max(len(row) for row in tiles)
    grid = Image.new("RGB", (columns * cell_w, GRID_LABEL_HEIGHT + len(tiles) * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    font = _font(FONT_SIZE - 2)
    for column, label in enumerate(labels[:columns]):
        draw.text((column * cell_w + cell_w / 2, GRID_LABEL_HEIGHT / 2), label, fill="black", font=font, anchor="mm")
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            grid.paste(tile, (c * cell_w, GRID_LABEL_HEIGHT + r * cell_h))
    return grid


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write a PNG atomically (optimised, to keep committed plots small)."""
    return atomic_write(path, lambda stream: image.save(stream, format="PNG", optimize=True))
