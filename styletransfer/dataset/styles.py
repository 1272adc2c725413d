"""Each style's representation (AdaIN's (μ, σ), WCT's (μ, Σ), Magenta's embedding) computed once.

A style set can be large (the 79,434 paintings behind Stylized-ImageNet; WCT's Σ is 2 MiB per
style), so representations go to a cache folder on disk, one file per style named by a hash of
what it depends on (the method's settings and networks, the file's path, size and mtime), and
live in memory in a bounded LRU. A rerun, a resumed run and the other processes of a run on the
same machine find them there. ``cache_dir=None`` keeps them in memory only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch

from ..files import atomic_write

MEMORY_BYTES = 1 << 30  # representations kept in memory at once (LRU beyond)
NO_CACHE = "none"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/styletransfer/styles`` (default ``~/.cache/styletransfer/styles``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "styletransfer" / "styles"


def _to_tensors(representation) -> dict[str, torch.Tensor]:
    if isinstance(representation, torch.Tensor):
        return {"tensor": representation}
    return {field.name: getattr(representation, field.name) for field in dataclasses.fields(representation)}


def _nbytes(representation) -> int:
    return sum(t.numel() * t.element_size() for t in _to_tensors(representation).values())


class StyleBank:
    """Representations by style file: ``get(path)`` finds one, or reads the image (``read(path)``)
    and computes it (``compute(image)``)."""

    def __init__(self, read: Callable[[Path], torch.Tensor], compute: Callable[[torch.Tensor], object], kind: type,
                 identity: dict, cache_dir: Path | None, memory_bytes: int = MEMORY_BYTES) -> None:
        self.read, self.compute = read, compute
        self.kind = kind  # the representation's type: a Tensor, or a dataclass of tensors
        self.identity = json.dumps(identity, sort_keys=True, default=str)  # what every representation depends on
        self.cache_dir = cache_dir
        self.memory_bytes = memory_bytes
        self.memory: OrderedDict[Path, object] = OrderedDict()
        self.held = 0
        self.computed = self.loaded = 0

    def key(self, path: Path) -> str:
        stat = os.stat(path)
        text = f"{self.identity}\0{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}"
        return hashlib.sha256(text.encode()).hexdigest()

    def file(self, path: Path) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{self.key(path)}.pt"

    def cached(self, path: Path) -> bool:
        """Whether ``get(path)`` finds the representation without computing it."""
        file = self.file(path)
        return path in self.memory or (file is not None and file.exists())

    def get(self, path: Path, prepared: torch.Tensor | None = None):
        """The representation of the style file ``path`` (``prepared``: its image, already read)."""
        if path in self.memory:
            self.memory.move_to_end(path)
            return self.memory[path]
        file = self.file(path)
        representation = self._load(file) if file is not None and file.exists() else None
        if representation is None:
            representation = self.compute(self.read(path) if prepared is None else prepared)
            self.computed += 1
            if file is not None:
                buffer = io.BytesIO()
                torch.save({name: t.cpu() for name, t in _to_tensors(representation).items()}, buffer)
                atomic_write(file, lambda stream: stream.write(buffer.getvalue()))
        self._remember(path, representation)
        return representation

    def _load(self, file: Path):
        try:
            tensors = torch.load(file, map_location="cpu", weights_only=True)
        except Exception:  # a damaged cache file is recomputed
            return None
        self.loaded += 1
        return tensors["tensor"] if self.kind is torch.Tensor else self.kind(**tensors)

    def _remember(self, path: Path, representation) -> None:
        self.memory[path] = representation
        self.held += _nbytes(representation)
        while self.held > self.memory_bytes and len(self.memory) > 1:
            _, dropped = self.memory.popitem(last=False)
            self.held -= _nbytes(dropped)
