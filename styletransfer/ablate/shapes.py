"""A synthetic classification task and shifted versions of it, for the adaBN experiment.

Source domain: one shape per image (the class), at a random position, scale and rotation, in a
random bright colour on a random dark background, with mild pixel noise. Target domains apply
one shift from ``SHIFTS`` to source-distributed scenes: the labels' meaning is unchanged, only
the image statistics move. Everything is a pure function of a ``torch.Generator``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..registry import Registry

SHAPES = ("disk", "ring", "square", "frame", "triangle", "cross", "bar", "corner")
IMAGE_SIZE = 32
SCALE = (0.45, 0.8)  # shape radius, in units of the half image side
OFFSET = 0.2  # largest shift of the shape centre from the image centre
BACKGROUND = (0.0, 0.35)  # source background channel values
FOREGROUND = (0.55, 1.0)  # source foreground channel values
SOURCE_NOISE = 0.03
HOLE = 0.55  # inner radius of ring and frame, relative to the outer one
ARM = 0.28  # half thickness of cross and corner arms, relative to the radius
BAR = ARM * 1.2  # half thickness of the bar
BOX = 0.8  # half side of square, frame and corner
INRADIUS = 0.5  # of the triangle (its corners are at radius 1)
TEXTURE_DEPTH = 0.4  # the texture shift multiplies pixels by 1 ± this

# Shift strengths.
COLOR_MATRIX = ((0.20, 0.50, 0.15), (0.15, 0.35, 0.10), (0.55, 0.75, 0.60))  # output RGB from input RGB
COLOR_OFFSET = (0.25, 0.05, 0.0)
CONTRAST = 0.35  # the contrast shift keeps this fraction of the deviation from mid-grey…
BRIGHTNESS = 0.2  # …and adds this
TARGET_NOISE = 0.2
TEXTURE_FREQUENCY = (0.6, 1.4)  # stripe cycles per pixel·π (high frequency)


def shape_masks(labels: Tensor, generator: torch.Generator, size: int = IMAGE_SIZE) -> Tensor:
    """Binary masks (N, 1, size, size) of the shapes ``labels`` index into ``SHAPES``."""
    n = labels.shape[0]
    axis = torch.linspace(-1, 1, size)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")  # (S, S)
    radius = SCALE[0] + (SCALE[1] - SCALE[0]) * torch.rand(n, 1, 1, generator=generator)
    centre = (torch.rand(n, 2, 1, 1, generator=generator) * 2 - 1) * OFFSET
    angle = torch.rand(n, 1, 1, generator=generator) * 2 * math.pi
    dx, dy = xs - centre[:, 0], ys - centre[:, 1]  # (N, S, S)
    u = (dx * torch.cos(angle) + dy * torch.sin(angle)) / radius  # shape coordinates, radius 1
    v = (-dx * torch.sin(angle) + dy * torch.cos(angle)) / radius
    r = (u**2 + v**2).sqrt()
    box = torch.maximum(u.abs(), v.abs())
    normals = (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)  # of the triangle's three sides
    triangle = torch.stack([u * math.cos(a) + v * math.sin(a) for a in normals]).amax(0)
    masks = {
        "disk": r < 1,
        "ring": (r < 1) & (r > HOLE),
        "square": box < BOX,
        "frame": (box < BOX) & (box > BOX * HOLE),
        "triangle": triangle < INRADIUS,
        "cross": ((u.abs() < ARM) & (v.abs() < 1)) | ((v.abs() < ARM) & (u.abs() < 1)),
        "bar": (u.abs() < 1) & (v.abs() < BAR),
        "corner": (((u.abs() < BOX) & (v > BOX - 2 * ARM) & (v < BOX))
                   | ((v.abs() < BOX) & (u > -BOX) & (u < -BOX + 2 * ARM))),
    }
    stacked = torch.stack([masks[name] for name in SHAPES], dim=1).float()  # (N, K, S, S)
    return stacked.gather(1, labels.view(n, 1, 1, 1).expand(n, 1, size, size))  # (N, 1, S, S)


def render(masks: Tensor, generator: torch.Generator) -> Tensor:
    """Source-domain images (N, 3, S, S) in [0, 1] for the masks."""
    n = masks.shape[0]
    background = BACKGROUND[0] + (BACKGROUND[1] - BACKGROUND[0]) * torch.rand(n, 3, 1, 1, generator=generator)
    foreground = FOREGROUND[0] + (FOREGROUND[1] - FOREGROUND[0]) * torch.rand(n, 3, 1, 1, generator=generator)
    image = background * (1 - masks) + foreground * masks
    return (image + SOURCE_NOISE * torch.randn(image.shape, generator=generator)).clamp(0, 1)


Shift = Callable[[Tensor, Tensor, torch.Generator], Tensor]  # (images, masks, generator) → images
SHIFTS: Registry[Shift] = Registry("domain shift")


@SHIFTS.register("color")
def _color(images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
    """A strong colour cast: every pixel mapped by a fixed colour matrix plus an offset."""
    matrix = torch.tensor(COLOR_MATRIX)
    offset = torch.tensor(COLOR_OFFSET).view(1, 3, 1, 1)
    return (torch.einsum("oc,nchw->nohw", matrix, images) + offset).clamp(0, 1)


@SHIFTS.register("contrast")
def _contrast(images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
    """Washed out: lower contrast around mid-grey, brighter."""
    return (0.5 + (images - 0.5) * CONTRAST + BRIGHTNESS).clamp(0, 1)


@SHIFTS.register("noise")
def _noise(images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
    """Strong additive Gaussian pixel noise."""
    return (images + TARGET_NOISE * torch.randn(images.shape, generator=generator)).clamp(0, 1)


@SHIFTS.register("texture")
def _texture(images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
    """Shape and background filled with high-frequency stripes of random orientation."""
    n, _, size, _ = images.shape
    axis = torch.arange(size, dtype=torch.float32)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    angle = torch.rand(n, 1, 1, 1, generator=generator) * math.pi
    frequency = TEXTURE_FREQUENCY[0] + (TEXTURE_FREQUENCY[1] - TEXTURE_FREQUENCY[0]) * torch.rand(
        n, 1, 1, 1, generator=generator)
    stripes = torch.sin((xs * torch.cos(angle) + ys * torch.sin(angle)) * frequency * math.pi)  # (N, 1, S, S)
    return (images * (1 - TEXTURE_DEPTH + TEXTURE_DEPTH * stripes)).clamp(0, 1)


@SHIFTS.register("invert")
def _invert(images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
    """Photographic negative: dark shapes on bright backgrounds."""
    return 1 - images


def make_domain(count: int, generator: torch.Generator, *, shift: str | None = None,
                classes: int = len(SHAPES)) -> tuple[Tensor, Tensor]:
    """``count`` images (N, 3, 32, 32) and labels (N,) of the source domain, or of a shifted one."""
    labels = torch.randint(classes, (count,), generator=generator)
    masks = shape_masks(labels, generator)
    images = render(masks, generator)
    if shift is not None:
        images = SHIFTS.get(shift)(images, masks, generator)
    return images, labels
