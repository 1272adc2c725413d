"""Decoding and resizing in data-loader workers: one item is one chunk of contents (or one style).

An item holds, for each file, its prepared image (resized by the shorter side, optionally
centre-cropped) or the one-line reason it could not be read, so a bad file never stops a run;
and, where asked (``own_size``: Magenta with alpha < 1 embeds each content as a style), the same
file prepared at that size from the original, as ``stylize`` prepares it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from ..data import ignore_stop_signals
from ..errors import ImageError
from ..imageio import MIN_SIDE, load_image
from ..realtime import prepare_image

Prepared = tuple[int, "Tensor | str", "Tensor | None"]  # (index, image or why not, image at own_size)


def prepare_file(path: Path, size: int, crop: bool, max_pixels: int | None) -> Tensor | str:
    """The (3, H, W) image of ``path`` resized and cropped, or why it cannot be used."""
    return _prepare_file(path, size, crop, max_pixels)[0]


def _prepare_file(path: Path, size: int, crop: bool, max_pixels: int | None,
                  own_size: int | None = None) -> tuple[Tensor | str, Tensor | None]:
    """``prepare_file``'s result and, with ``own_size``, the same original prepared at that size."""
    try:
        original = load_image(path, max_pixels=max_pixels)
    except ImageError as error:
        return str(error), None
    image = prepare_image(original, size, crop)
    if min(image.shape[-2:]) < MIN_SIDE:
        return f"{str(path)!r} is {image.shape[-1]}x{image.shape[-2]} after resizing, under {MIN_SIDE}px", None
    own = None if own_size is None else prepare_image(original, own_size, crop).contiguous()
    return image.contiguous(), own


class ChunkDataset(torch.utils.data.Dataset):
    """``dataset[i]`` → the prepared contents of chunk ``i``: [(content index, image or reason)]."""

    def __init__(self, paths: Sequence[Path], chunks: Sequence[Sequence[int]], *, size: int, crop: bool,
                 max_pixels: int | None, own_size: int | None = None) -> None:
        self.paths, self.chunks = paths, chunks
        self.size, self.crop, self.max_pixels, self.own_size = size, crop, max_pixels, own_size

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> list[Prepared]:
        return [self._prepare(i) for i in self.chunks[index]]

    def _prepare(self, index: int) -> Prepared:
        return index, *_prepare_file(self.paths[index], self.size, self.crop, self.max_pixels, self.own_size)


def make_loader(dataset: torch.utils.data.Dataset, workers: int) -> torch.utils.data.DataLoader:
    """Items in order, one at a time, ``workers`` processes ahead (none: in this process)."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                       worker_init_fn=ignore_stop_signals if workers else None,
                                       prefetch_factor=2 if workers else None)
