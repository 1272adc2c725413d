"""Training data: image folders, a seeded infinite sampler, and pytorch-AdaIN's resize-then-crop.

Every random choice is a pure function of ``(seed, stream, position)``. Stream position p holds
entry ``p mod n`` of the shuffled order of epoch ``p // n``; its crop offsets come from a
generator seeded with ``(seed, stream, p)``. Iteration i of a run with (global) batch B reads
positions ``i·B … i·B + B − 1``; with W processes rank r reads the r-th slice of B/W of them.
So the data a step sees depends neither on the number of loader workers nor on the number of
processes, and a run resumed at iteration k sees exactly what the uninterrupted run saw.

Unreadable files never stop a run: files whose header Pillow cannot identify are dropped when
the folder is scanned; a file that fails later, while decoding, is replaced by the next file of
the folder (deterministically) and reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from PIL import Image
from torch import Tensor

from .errors import ImageError, TrainingError
from .imageio import list_images, load_image, resize_to

CONTENT_STREAM = "content"
STYLE_STREAM = "style"
SEED_BITS = 63  # torch.Generator.manual_seed takes any non-negative 64-bit integer


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, stable across processes, platforms and Python versions."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> (64 - SEED_BITS)


def _header_readable(path: Path) -> bool:
    """Whether Pillow recognises the file (reads the header only, not the pixels)."""
    try:
        with Image.open(path):
            return True
    except Exception:  # any failure to identify means: not an image we can use
        return False


@dataclass(frozen=True)
class ImageFolder:
    """The image files below ``root`` (searched recursively), in sorted order."""

    root: Path
    files: tuple[Path, ...]
    unreadable: tuple[Path, ...]  # image extension, but Pillow cannot identify the file

    @classmethod
    def scan(cls, root: str | os.PathLike, label: str) -> "ImageFolder":
        """List and header-check the images of a folder; no readable image is a TrainingError."""
        root = Path(root).expanduser()
        if not root.is_dir():
            raise TrainingError(f"--{label}-dir {str(root)!r} is not a folder: pass a folder of images")
        candidates = list_images(root, recursive=True)
        readable = [_header_readable(p) for p in candidates]
        files = tuple(p for p, ok in zip(candidates, readable) if ok)
        unreadable = tuple(p for p, ok in zip(candidates, readable) if not ok)
        if not files:
            found = f"{len(candidates)} files with image extensions, none readable" if candidates else "no image files"
            raise TrainingError(f"--{label}-dir {str(root)!r} has no readable images ({found}): "
                                "point it at a folder of .jpg/.png images (searched recursively)")
        return cls(root, files, unreadable)

    def __len__(self) -> int:
        return len(self.files)

    def fingerprint(self) -> str:
        """sha256 of the sorted relative paths: equal fingerprints mean the same data order."""
        names = "\n".join(p.relative_to(self.root).as_posix() for p in self.files)
        return hashlib.sha256(names.encode()).hexdigest()

    def describe(self) -> dict:
        return {"root": str(self.root), "images": len(self.files), "unreadable": len(self.unreadable),
                "fingerprint": self.fingerprint()}


class InfiniteSampler:
    """Stream position → (index into a folder, crop seed); a fresh shuffle every epoch."""

    def __init__(self, size: int, seed: int, stream: str) -> None:
        if size < 1:
            raise ValueError("cannot sample from an empty folder")
        self.size, self.seed, self.stream = size, seed, stream
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def _permutation(self, epoch: int) -> Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.stream, "epoch", epoch))
            self._epoch, self._order = epoch, torch.randperm(self.size, generator=generator)  # (n,)
        return self._order

    def index(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        return int(self._permutation(epoch)[offset])

    def crop_seed(self, position: int) -> int:
        return derive_seed(self.seed, self.stream, "crop", position)


@dataclass(frozen=True)
class Sample:
    """What one training example is made of: which files, and the seeds of their crops."""

    content_index: int
    content_seed: int
    style_index: int
    style_seed: int


class PairSampler(torch.utils.data.Sampler):
    """Yields this rank's ``Sample``s for iterations ``start_iteration, start_iteration + 1, …``."""

    def __init__(self, content: InfiniteSampler, style: InfiniteSampler, *, batch_size: int,
                 rank: int = 0, world_size: int = 1, start_iteration: int = 0) -> None:
        if batch_size % world_size:
            raise ValueError("the batch size must be a multiple of the number of processes")
        self.content, self.style = content, style
        self.batch_size, self.local_batch = batch_size, batch_size // world_size
        self.rank, self.start_iteration = rank, start_iteration

    def positions(self, iteration: int) -> range:
        """The stream positions this rank reads at ``iteration``."""
        first = iteration * self.batch_size + self.rank * self.local_batch
        return range(first, first + self.local_batch)

    def samples(self, iteration: int) -> list[Sample]:
        return [Sample(self.content.index(p), self.content.crop_seed(p), self.style.index(p), self.style.crop_seed(p))
                for p in self.positions(iteration)]

    def state(self, iteration: int) -> dict:
        """Where a run resumed at ``iteration`` continues reading (the next global position)."""
        return {"next_position": iteration * self.batch_size, "batch_size": self.batch_size,
                "seed": self.content.seed}

    def __iter__(self) -> Iterator[Sample]:
        for iteration in itertools.count(self.start_iteration):
            yield from self.samples(iteration)


def random_crop(image: Tensor, size: int, seed: int) -> Tensor:
    """A ``size``×``size`` crop of a (3, H, W) image at offsets drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    height, width = image.shape[-2:]
    top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
    return image[:, top:top + size, left:left + size]  # (3, size, size)


class PairDataset(torch.utils.data.Dataset):
    """``dataset[Sample]`` → (content crop, style crop, paths skipped as unreadable)."""

    def __init__(self, content: ImageFolder, style: ImageFolder, *, image_size: int, crop_size: int) -> None:
        self.content, self.style = content, style
        self.image_size, self.crop_size = image_size, crop_size

    def load(self, folder: ImageFolder, index: int, seed: int) -> tuple[Tensor, list[str]]:
        """Resize to image_size² and crop; an undecodable file gives way to the next one."""
        skipped: list[str] = []
        for step in range(len(folder)):
            path = folder.files[(index + step) % len(folder)]
            try:
                image = load_image(path)
            except ImageError:
                skipped.append(str(path))
                continue
            image = resize_to(image, self.image_size, self.image_size)  # (3, image_size, image_size)
            return random_crop(image, self.crop_size, seed).contiguous(), skipped
        raise TrainingError(f"no image below {str(folder.root)!r} can be decoded "
                            f"({len(skipped)} files failed): check the data set")

    def __getitem__(self, sample: Sample) -> tuple[Tensor, Tensor, list[str]]:
        content, skipped_content = self.load(self.content, sample.content_index, sample.content_seed)
        style, skipped_style = self.load(self.style, sample.style_index, sample.style_seed)
        return content, style, skipped_content + skipped_style

    def __len__(self) -> int:  # the sampler is infinite; this is one epoch of content images
        return len(self.content)


def collate_pairs(items: Sequence[tuple[Tensor, Tensor, list[str]]]) -> tuple[Tensor, Tensor, list[str]]:
    contents = torch.stack([item[0] for item in items])  # (B, 3, crop, crop)
    styles = torch.stack([item[1] for item in items])  # (B, 3, crop, crop)
    return contents, styles, [path for item in items for path in item[2]]


def ignore_stop_signals(worker_id: int) -> None:
    """Loader workers leave SIGINT/SIGTERM to the main process, which stops them itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: PairDataset, sampler: PairSampler, *, workers: int, pin_memory: bool = False):
    return torch.utils.data.DataLoader(
        dataset, batch_size=sampler.local_batch, sampler=sampler, num_workers=workers,
        collate_fn=collate_pairs, pin_memory=pin_memory,
        worker_init_fn=ignore_stop_signals if workers else None,
    )


@contextlib.contextmanager
def running_loader(loader: torch.utils.data.DataLoader) -> Iterator[Iterator]:
    """``iter(loader)``, whose worker processes are shut down on every way out of the block.

    The workers ignore SIGTERM (``ignore_stop_signals``), so one left alive would make
    multiprocessing's exit handler, which terminates and then joins them, wait forever. Dropping
    the last reference is not enough: an exception's traceback keeps the iterator alive.
    """
    batches = iter(loader)
    try:
        yield batches
    finally:
        shutdown = getattr(batches, "_shutdown_workers", None)  # absent with workers=0
        if shutdown is not None:
            shutdown()
