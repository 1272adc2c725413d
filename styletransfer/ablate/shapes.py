"""A synthetic classification task and shifted versions of it, for the adaBN experiment.

Source domain: one shape per image (the class), at a random position, scale and rotation, in a
random bright colour on a random dark background, with mild pixel noise. Target domains apply
one shift from ``SHIFTS`` to source-distributed scenes: the labels' meaning is unchanged, only
the image statistics move. Everything is a pure function of a ``torch.Generator``. The ``style``
shift runs Magenta's arbitrary-stylization network through ``stylize-dataset``
(``styletransfer.dataset``), imported only when that shift is used.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..errors import ImageError, UsageError
from ..registry import Registry
from .data import ASSETS

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
STYLE_ROOT = ASSETS / "style"  # the project's sample styles: three textures and three paintings
# The style shift stylises at this side and resizes back to IMAGE_SIZE, chosen by looking at the
# same scenes with each painting at 32, 64, 96 and 128 px. At 32 px Magenta's transformer (9×9
# convs at both ends, two stride-2 convs between) paints over the shapes: with swirl most of them
# dissolve, and holes and thin bars blur with the others. At 64 px mosaic and brushstrokes are
# plain and keep the shapes, but swirl (a low-contrast painting) fades thin bars, corners and
# crosses almost into the background. At 96 px every painting is plain (tiles, strokes, swirls and
# their colours) and every shape keeps its outline. 128 px keeps them no better once resized to
# 32 px, turns brushstrokes' finer strokes into pixel noise, and costs twice as much (the
# transformer takes about 4, 11 and 22 ms an image at 64, 96 and 128 px on one CPU thread).
STYLE_SIZE = 96
STYLE_BATCH = 32  # scenes per pass through the transformer
STYLE_NAME_DIGITS = 6  # scene files are 000000.png, …: sorted order is scene order


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


@SHIFTS.register("style")
def _style(images: Tensor, masks: Tensor, generator: torch.Generator) -> Tensor:
    """Each scene stylised by Magenta's arbitrary-stylization network with one of the project's
    paintings, chosen per scene by ``stylize-dataset`` from a seed drawn from ``generator``."""
    return stylize_scenes(images, style_seed(generator))


def style_seed(generator: torch.Generator) -> int:
    """The ``stylize-dataset`` seed of a style-shifted domain: drawn from its generator, so the
    domain stays a pure function of the generator."""
    return int(torch.randint(2**31 - 1, (), generator=generator))


def scene_name(index: int, count: int) -> str:
    """The file of scene ``index`` of ``count`` in the folder given to ``stylize-dataset``:
    zero-padded, so its sorted order is the scenes' order; below a million scenes a scene's name,
    and so its style, does not depend on ``count``."""
    return f"{index:0{max(STYLE_NAME_DIGITS, len(str(count - 1)))}d}.png"


def stylize_scenes(images: Tensor, seed: int, *, style_root: str | os.PathLike = STYLE_ROOT,
                   size: int = STYLE_SIZE, batch_size: int = STYLE_BATCH) -> Tensor:
    """``images`` (N, 3, S, S) in [0, 1] through ``stylize-dataset`` with Magenta's network on the
    CPU: one style per scene from ``style_root`` (the dataset command's deterministic choice from
    ``seed`` and the scene's file name, ``scene_name``), stylised at ``size`` px and resized back
    to S. The images pass through 8-bit PNG files on the way. Returns (N, 3, S, S) in [0, 1]."""
    from ..dataset import DatasetConfig, stylize_dataset
    from ..imageio import load_image, resize_to, save_image

    if not Path(style_root).is_dir():
        raise UsageError(f"the style shift needs the paintings in {str(style_root)!r}: pass a folder of "
                         "paintings")
    count, _, height, width = images.shape
    config = DatasetConfig(method="magenta", num_styles=1, seed=seed, content_size=size, ext="png", workers=0,
                           batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="styletransfer-style-shift-") as folder:
        scenes, stylised = Path(folder) / "scenes", Path(folder) / "stylised"
        scenes.mkdir()
        names = [scene_name(index, count) for index in range(count)]
        for name, image in zip(names, images):
            save_image(image, scenes / name)
        run = stylize_dataset(scenes, style_root, stylised, config, style_cache="none", device="cpu",
                              progress=False)
        if run.written != count or run.failed:
            reasons = run.errors.read_text(encoding="utf-8").splitlines()[1:2] if run.errors else []
            raise ImageError(f"stylize-dataset made {run.written} of {count} style-shifted scenes "
                             f"({run.failed} failed{': ' + reasons[0] if reasons else ''})")
        outputs = torch.stack([load_image(stylised / name) for name in names])  # (N, 3, size, size)
    return resize_to(outputs, height, width)  # (N, 3, S, S)


def make_domain(count: int, generator: torch.Generator, *, shift: str | None = None,
                classes: int = len(SHAPES)) -> tuple[Tensor, Tensor]:
    """``count`` images (N, 3, 32, 32) and labels (N,) of the source domain, or of a shifted one."""
    labels = torch.randint(classes, (count,), generator=generator)
    masks = shape_masks(labels, generator)
    images = render(masks, generator)
    if shift is not None:
        images = SHIFTS.get(shift)(images, masks, generator)
    return images, labels
