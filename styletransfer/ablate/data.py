"""Content images for training feed-forward networks: photo crops plus generated scenes.

The photos of a folder are split by file into a training part and a held-out part; generated
images come from separate random streams for training and evaluation, so no held-out image is
ever seen in training. Every batch is a pure function of (seed, iteration): each arm of an
ablation sees exactly the same images in the same order.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UsageError
from ..imageio import list_images, load_image, resize_edge, resize_to

# The sample images ship inside the package (a checkout's assets/ links here), so every default
# works from any directory and from an installed wheel.
ASSETS = Path(__file__).resolve().parents[1] / "samples"
DEFAULT_CONTENT_DIR = ASSETS / "content"
DEFAULT_STYLE = ASSETS / "style" / "mosaic.jpg"
MIN_CROP = 0.35  # smallest crop side, as a fraction of the photo's short side
SHAPES_PER_SCENE = (3, 8)
EDGE_SHARPNESS = 60.0  # soft-edge slope of generated shapes, per unit of image width
STRIPE_FREQUENCY = (3.0, 14.0)  # cycles per image width of textured fills
STRIPE_DEPTH = 0.3  # striped fills vary by ± this fraction of their colour
RADIUS = (0.05, 0.35)  # half extents of generated shapes, in image widths
ITERATION_STRIDE = 10**7  # training stream seed = seed · stride + iteration
HELDOUT_STREAM = 2**40  # held-out stream seed = this + seed, beyond every training seed
PHOTO_STORAGE_FACTOR = 2  # photos are kept at this multiple of the training size


def _grid(size: int) -> tuple[Tensor, Tensor]:
    axis = torch.linspace(0, 1, size)
    return torch.meshgrid(axis, axis, indexing="ij")  # ys, xs: (S, S)


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def generated_image(size: int, generator: torch.Generator) -> Tensor:
    """A random scene: a smooth gradient with soft ellipses and rectangles, some striped.

    Returns (3, size, size) in [0, 1].
    """
    ys, xs = _grid(size)
    corners = torch.rand(4, 3, 1, 1, generator=generator)  # top-left, top-right, bottom-left, bottom-right
    image = ((1 - ys) * ((1 - xs) * corners[0] + xs * corners[1])
             + ys * ((1 - xs) * corners[2] + xs * corners[3]))  # (3, S, S)
    count = int(torch.randint(SHAPES_PER_SCENE[0], SHAPES_PER_SCENE[1] + 1, (), generator=generator))
    for _ in range(count):
        cx, cy = _uniform(0, 1, generator), _uniform(0, 1, generator)
        rx, ry = _uniform(*RADIUS, generator), _uniform(*RADIUS, generator)
        if float(torch.rand((), generator=generator)) < 0.5:
            inside = 1 - ((xs - cx) / rx) ** 2 - ((ys - cy) / ry) ** 2  # > 0 inside the ellipse
            mask = torch.sigmoid(inside * EDGE_SHARPNESS * min(rx, ry))
        else:
            mask = (torch.sigmoid((rx - (xs - cx).abs()) * EDGE_SHARPNESS)
                    * torch.sigmoid((ry - (ys - cy).abs()) * EDGE_SHARPNESS))
        fill = torch.rand(3, 1, 1, generator=generator).expand(3, size, size)
        if float(torch.rand((), generator=generator)) < 0.5:
            angle = _uniform(0, math.pi, generator)
            frequency = _uniform(*STRIPE_FREQUENCY, generator)
            phase = (xs * math.cos(angle) + ys * math.sin(angle)) * frequency * 2 * math.pi
            fill = fill * (1 - STRIPE_DEPTH + STRIPE_DEPTH * torch.sin(phase))
        image = image * (1 - mask) + fill * mask
    return image.clamp(0, 1)


def random_crop(photo: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """A random square crop (side ≥ MIN_CROP of the short edge), resized to size, maybe flipped."""
    height, width = photo.shape[-2:]
    side = max(1, round(min(height, width) * _uniform(MIN_CROP, 1.0, generator)))
    top = int(torch.randint(height - side + 1, (), generator=generator))
    left = int(torch.randint(width - side + 1, (), generator=generator))
    crop = resize_to(photo[:, top : top + side, left : left + side], size, size)
    if float(torch.rand((), generator=generator)) < 0.5:
        crop = crop.flip(-1)
    return crop


@dataclass
class ContentImages:
    """Photos split by file into training and held-out parts."""

    train: list[Tensor] = field(default_factory=list)
    heldout: list[Tensor] = field(default_factory=list)
    train_names: list[str] = field(default_factory=list)
    heldout_names: list[str] = field(default_factory=list)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, *, holdout: int, size: int) -> "ContentImages":
        """The last ``holdout`` images of the folder (by name) are held out; the others train."""
        folder = Path(folder)
        paths = list_images(folder)
        if len(paths) < holdout + 1:
            raise UsageError(f"--content {str(folder)!r} has {len(paths)} images; it needs at least "
                             f"{holdout + 1} (--holdout {holdout} held out, one or more to train on)")
        photos = [resize_edge(load_image(p), PHOTO_STORAGE_FACTOR * size, edge="short") for p in paths]
        split = len(paths) - holdout
        return cls(photos[:split], photos[split:], [p.name for p in paths[:split]], [p.name for p in paths[split:]])

    def batch(self, count: int, size: int, generator: torch.Generator, *, photos: list[Tensor],
              photo_fraction: float, alternate: bool = False) -> Tensor:
        """``count`` images, each a photo crop with probability ``photo_fraction`` else generated
        (with ``alternate``: photo crops at even positions, generated scenes at odd ones)."""
        images = []
        for index in range(count):
            take_photo = index % 2 == 0 if alternate else float(torch.rand((), generator=generator)) < photo_fraction
            if photos and take_photo:
                index = int(torch.randint(len(photos), (), generator=generator))
                images.append(random_crop(photos[index], size, generator))
            else:
                images.append(generated_image(size, generator))
        return torch.stack(images)  # (count, 3, size, size)

    def train_batch(self, iteration: int, count: int, size: int, *, seed: int, photo_fraction: float) -> Tensor:
        generator = torch.Generator().manual_seed(seed * ITERATION_STRIDE + iteration)
        return self.batch(count, size, generator, photos=self.train, photo_fraction=photo_fraction)

    def heldout_set(self, count: int, size: int, *, seed: int = 0) -> Tensor:
        """A fixed evaluation set: crops of the held-out photos alternating with scenes from a
        separate generated stream."""
        generator = torch.Generator().manual_seed(seed + HELDOUT_STREAM)
        return self.batch(count, size, generator, photos=self.heldout, photo_fraction=0.5, alternate=True)


def load_style(path: str | os.PathLike, size: int) -> Tensor:
    """The style image with its long edge at ``size``, (3, H, W)."""
    return resize_edge(load_image(path), size)


def check_assets(content: str | os.PathLike, style: str | os.PathLike) -> None:
    """A clear message when the default sample images are not there (an installed wheel)."""
    for flag, path in (("--content", content), ("--style", style)):
        if not Path(path).exists():
            raise UsageError(f"{flag} {str(path)!r} does not exist: pass {flag} PATH")
