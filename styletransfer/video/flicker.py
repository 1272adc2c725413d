"""How much a stylised clip flickers, measured on a pan whose motion is known.

A synthetic pan (:func:`pan`) crops a window that moves by a fixed integer (dy, dx) per frame
out of a still picture, so frame t + 1 at (y, x) shows what frame t showed at (y + dy, x + dx).
A temporally stable stylisation keeps that: :func:`pan_flicker` is the mean absolute difference
between output frame t + 1 and output frame t shifted by the known motion, over the region the
two share, averaged over consecutive pairs (RGB in [0, 1]; 0 for the content itself).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import UsageError


def shifted(image: Tensor, dy: int, dx: int) -> tuple[Tensor, Tensor]:
    """``image`` (…, H, W) moved so that ``out[…, y, x] = image[…, y + dy, x + dx]``, and a
    (1, H, W) mask of the positions that have a source (1) or fall outside it (0; zeros there)."""
    height, width = image.shape[-2:]
    out = torch.zeros_like(image)
    valid = image.new_zeros(1, height, width)
    top, bottom = max(0, -dy), min(height, height - dy)
    left, right = max(0, -dx), min(width, width - dx)
    if top < bottom and left < right:
        out[..., top:bottom, left:right] = image[..., top + dy:bottom + dy, left + dx:right + dx]
        valid[..., top:bottom, left:right] = 1
    return out, valid


def pan(image: Tensor, height: int, width: int, frames: int, step: tuple[int, int]) -> list[Tensor]:
    """``frames`` crops of (height, width) from a (3, H, W) picture, the window moving by ``step``
    = (dy, dx) ≥ 0 pixels per frame from the top left."""
    dy, dx = step
    if dy < 0 or dx < 0:
        raise UsageError(f"a pan moves right and down here: step {step} must be ≥ 0")
    need_h, need_w = height + dy * (frames - 1), width + dx * (frames - 1)
    if need_h > image.shape[-2] or need_w > image.shape[-1]:
        raise UsageError(f"a pan of {frames} frames of {width}x{height} by {step} needs a {need_w}x{need_h} "
                         f"picture, got {image.shape[-1]}x{image.shape[-2]}")
    return [image[:, t * dy:t * dy + height, t * dx:t * dx + width].clone() for t in range(frames)]


def pan_flicker(frames: Sequence[Tensor], step: tuple[int, int]) -> float:
    """Mean |out[t + 1] − out[t] moved by the pan's ``step``| over the shared region and the
    channels, averaged over consecutive pairs of (3, H, W) frames."""
    if len(frames) < 2:
        raise UsageError("flicker needs at least two frames")
    differences = []
    for before, after in zip(frames[:-1], frames[1:]):
        moved, valid = shifted(before.float(), *step)  # moved[y, x] = before[y + dy, x + dx]
        shared = valid.sum() * before.shape[0]
        differences.append(float(((after.float() - moved).abs() * valid).sum() / shared))
    return sum(differences) / len(differences)
