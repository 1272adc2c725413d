"""Tiles for feed-forward stylisation of large images in bounded memory.

AdaIN's content statistics are global (one mean and std per channel over the whole image), so a
large image is stylised in two passes over tiles:

1. encode: each tile, grown by a halo, goes through the encoder; the features of its own
   (non-halo) cells are kept in one feature map of the whole image (512 channels at 1/8 of the
   resolution: 32 bytes per pixel in float32) and their channel sums are accumulated
   (:class:`ChannelMoments`, float64), so every tile shares the global statistics;
2. decode: each tile's features, grown by the halo, get AdaIN with the global statistics, go
   through the decoder, and the output's halo is cropped off before it is pasted.

Tiles start at multiples of 8 pixels, so their pooling grids line up with the whole image's.
A halo at least as wide as the networks' reach (:func:`exact_halo`, 32 pixels for the VGG19
encoder to relu4_1 and pytorch-AdaIN's decoder) makes every kept value depend only on pixels the
tile holds, so the tiled result equals the untiled one up to floating-point rounding: no seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .encoder import VGG19_LAYERS

FEATURE_STRIDE = 8  # relu4_1 lies after three 2x poolings
DEFAULT_TILE_SIZE = 1024  # pixels a side, when tiling is automatic
TILE_THRESHOLD_PIXELS = 1536 * 1536  # automatic tiling above this many (padded) pixels


@dataclass(frozen=True)
class Box:
    """A half-open rectangle [top, bottom) × [left, right) in some grid's units."""

    top: int
    left: int
    bottom: int
    right: int

    def grow(self, margin: int, height: int, width: int) -> "Box":
        """This box grown by ``margin`` on every side, clipped to a height × width grid."""
        return Box(max(0, self.top - margin), max(0, self.left - margin),
                   min(height, self.bottom + margin), min(width, self.right + margin))

    def scaled(self, factor: float) -> "Box":
        """The box in a grid ``factor`` times finer (or coarser, for factor < 1)."""
        return Box(*(int(v * factor) for v in (self.top, self.left, self.bottom, self.right)))

    def within(self, outer: "Box") -> "Box":
        """This box in coordinates relative to ``outer``'s corner."""
        return Box(self.top - outer.top, self.left - outer.left, self.bottom - outer.top, self.right - outer.left)

    def crop(self, tensor: Tensor) -> Tensor:
        """The box's part of a (..., H, W) tensor (a view)."""
        return tensor[..., self.top:self.bottom, self.left:self.right]


MIN_TILE_CELLS = 2  # a reflection-padded 3x3 conv needs at least 2 positions


def _split(length: int, tile_size: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) pixel ranges covering ``length``: starts on multiples of ``stride``, the last
    range ending at ``length``, as equal as that allows, each at most about ``tile_size``."""
    cells = length // stride
    parts = max(1, min(math.ceil(cells / max(tile_size // stride, 1)), cells // MIN_TILE_CELLS))
    bounds = [round(i * cells / parts) * stride for i in range(parts)] + [length]
    return list(zip(bounds[:-1], bounds[1:]))


def check_tile_size(tile_size: int | None, multiple: int, minimum: int) -> None:
    """A ``--tile-size`` must be None (automatic), 0 (no tiling) or a multiple of the network's
    stride of at least ``minimum``; anything else is a usage error."""
    if tile_size is not None and tile_size != 0 and (tile_size < minimum or tile_size % multiple):
        from .errors import UsageError

        raise UsageError(f"--tile-size must be 0 (no tiling) or a multiple of {multiple} that is ≥ {minimum}, "
                         f"got {tile_size}")


def plan_tiles(height: int, width: int, tile_size: int, stride: int = FEATURE_STRIDE) -> list[Box]:
    """Tiles (pixel boxes) covering a height × width image, each at most about tile_size a side.

    Tile edges fall on multiples of ``stride`` (the last tile of a row or column ends at the
    image's edge, taking the remainder below ``stride``), so every tile's pooling grid lines up
    with the image's. Each tile has at least 2 whole feature cells a side, which wins over
    ``tile_size`` for tiny tiles. ``tile_size`` 0: one tile.
    """
    if tile_size <= 0:
        return [Box(0, 0, height, width)]
    return [Box(top, left, bottom, right) for top, bottom in _split(height, tile_size, stride)
            for left, right in _split(width, tile_size, stride)]


# --- how far the networks reach ---------------------------------------------------------------


def encoder_reach(layer: str, stride: int = FEATURE_STRIDE) -> int:
    """Pixels beyond a feature cell's own stride × stride block that its value depends on.

    Walks VGG19 back from ``layer``: a 3x3 conv widens the interval by one unit on each side, a
    2x2 pooling maps unit u to units 2u and 2u + 1 below it.
    """
    low, high = 0, 0
    for name in reversed(VGG19_LAYERS[: VGG19_LAYERS.index(layer) + 1]):
        if name.startswith("conv"):
            low, high = low - 1, high + 1
        elif name.startswith("pool"):
            low, high = 2 * low, 2 * high + 1
    return max(-low, high - (stride - 1))


def decoder_reach(plan: tuple, stride: int = FEATURE_STRIDE) -> int:
    """Feature cells beyond an output pixel's own cell that it depends on (3x3 convs, 2x upsampling)."""
    reach = 0
    for pixel in range(stride):
        low, high = pixel, pixel
        for step in reversed(plan):
            if step == "up":
                low, high = low // 2, high // 2
            else:
                low, high = low - 1, high + 1
        reach = max(reach, -low, high)
    return reach


def exact_halo(layer: str, plan: tuple, stride: int = FEATURE_STRIDE) -> int:
    """The smallest halo (pixels, a multiple of stride) that makes tiling exact for both passes."""
    reach = max(encoder_reach(layer, stride), decoder_reach(plan, stride) * stride)
    return -(-reach // stride) * stride


# --- global statistics, streamed -------------------------------------------------------------


class ChannelMoments:
    """Per-channel mean and std of features that arrive in pieces, accumulated in float64.

    Sums of (x − K) and (x − K)² with K the first piece's channel means (a shift that keeps the
    variance formula free of cancellation). ``mean_std`` gives what ``adain.mean_std`` gives for
    all pieces together: the unbiased variance plus eps, square-rooted. (On Apple's MPS, which
    has no float64, the sums are kept on the CPU.)
    """

    def __init__(self) -> None:
        self.count = 0
        self.device: torch.device | None = None  # where the features came from (and results go)
        self.shift: Tensor | None = None  # (N, C, 1)
        self.sum: Tensor | None = None  # (N, C)
        self.sum_sq: Tensor | None = None  # (N, C)

    def add(self, features: Tensor) -> None:
        """Add the positions of a (N, C, H, W) or (N, C, K) piece."""
        values = features.reshape(*features.shape[:2], -1)  # (N, C, K)
        self.device = features.device
        if values.device.type == "mps":  # no float64 there
            values = values.cpu()
        values = values.double()
        if values.shape[-1] == 0:
            return
        if self.shift is None:
            self.shift = values.mean(dim=-1, keepdim=True)  # (N, C, 1)
            self.sum = values.new_zeros(values.shape[:2])
            self.sum_sq = values.new_zeros(values.shape[:2])
        centred = values - self.shift  # (N, C, K)
        self.sum += centred.sum(dim=-1)
        self.sum_sq += centred.square().sum(dim=-1)
        self.count += values.shape[-1]

    def mean_std(self, eps: float, *, unbiased: bool = True) -> tuple[Tensor, Tensor]:
        """Two (N, C, 1, 1) float32 tensors: the mean and sqrt(variance + eps), the variance
        unbiased (AdaIN's) or biased (instance norm's)."""
        if self.count < 2:
            raise ValueError(f"an unbiased variance needs at least 2 positions, got {self.count}")
        mean = self.sum / self.count  # (N, C), relative to the shift
        variance = (self.sum_sq - self.count * mean.square()) / (self.count - 1 if unbiased else self.count)
        mean = mean + self.shift[..., 0]
        std = (variance.clamp_min(0) + eps).sqrt()
        return mean.float().to(self.device)[..., None, None], std.float().to(self.device)[..., None, None]
