"""A pure reader for Qt ``.rcc`` resource bundles (format versions 1 to 3).

Layout (all integers big-endian): the magic ``qres``, then u32 version, tree offset, data offset
and names offset (version 3 adds a u32 of overall flags). The tree is an array of fixed-size
entries, the root at index 0: name offset u32, flags u16, then for a directory a child count u32
and the index of its first child u32, for a file country u16, language u16 and a data offset u32;
version 2 and later append a u64 modification time (entries of 14 or 22 bytes). A data entry is
a u32 length then the bytes; zlib entries carry Qt's 4-byte uncompressed-length prefix before
the zlib stream. A name is a u16 length (in UTF-16 code units), a u32 hash, then UTF-16-BE.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

MAGIC = b"qres"
SUPPORTED_VERSIONS = (1, 2, 3)
FLAG_ZLIB = 0x01
FLAG_DIRECTORY = 0x02
FLAG_ZSTD = 0x04
ENTRY_SIZE = {1: 14, 2: 22, 3: 22}


class RccError(ValueError):
    """The bytes are not a readable Qt resource bundle."""


def _zstd_decompress(payload: bytes) -> bytes | None:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 31)


class _Reader:
    def __init__(self, blob: bytes, origin: str) -> None:
        self.blob, self.origin = blob, origin
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise RccError(f"{origin}: not a Qt rcc bundle (no 'qres' magic)")
        self.version, self.tree, self.data, self.names = struct.unpack_from(">4I", blob, 4)
        if self.version not in SUPPORTED_VERSIONS:
            raise RccError(f"{origin}: rcc format version {self.version} (reader knows 1 to 3)")
        self.entry_size = ENTRY_SIZE[self.version]
        for name, offset in (("tree", self.tree), ("data", self.data), ("names", self.names)):
            if offset > len(blob):
                raise RccError(f"{origin}: {name} offset {offset} is past the end ({len(blob)} bytes)")
        self.skipped_zstd: list[str] = []

    def _unpack(self, fmt: str, offset: int) -> tuple:
        try:
            return struct.unpack_from(fmt, self.blob, offset)
        except struct.error as exc:
            raise RccError(f"{self.origin}: truncated bundle at offset {offset}") from exc

    def name(self, name_offset: int) -> str:
        start = self.names + name_offset
        (length,) = self._unpack(">H", start)
        raw = self.blob[start + 6 : start + 6 + 2 * length]
        if len(raw) != 2 * length:
            raise RccError(f"{self.origin}: truncated name at offset {start}")
        return raw.decode("utf-16-be")

    def payload(self, data_offset: int, flags: int, path: str) -> bytes | None:
        start = self.data + data_offset
        (length,) = self._unpack(">I", start)
        raw = self.blob[start + 4 : start + 4 + length]
        if len(raw) != length:
            raise RccError(f"{self.origin}: truncated data for {path!r}")
        if flags & FLAG_ZLIB:
            return zlib.decompress(raw[4:])  # skip qCompress's expected-length prefix
        if flags & FLAG_ZSTD:
            out = _zstd_decompress(raw)
            if out is None:
                self.skipped_zstd.append(path)
            return out
        return raw

    def walk(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        stack = [(0, "")]  # (entry index, its path); the root's name is empty
        seen: set[int] = set()
        while stack:
            index, path = stack.pop()
            if index in seen:
                raise RccError(f"{self.origin}: the tree has a cycle at entry {index}")
            seen.add(index)
            offset = self.tree + index * self.entry_size
            name_offset, flags = self._unpack(">IH", offset)
            if flags & FLAG_DIRECTORY:
                count, first = self._unpack(">II", offset + 6)
                for child in range(first, first + count):
                    (child_name,) = self._unpack(">I", self.tree + child * self.entry_size)
                    child_path = f"{path}/{self.name(child_name)}" if path else self.name(child_name)
                    stack.append((child, child_path))
            else:
                (data_offset,) = self._unpack(">I", offset + 10)
                content = self.payload(data_offset, flags, path)
                if content is not None:
                    files[path] = content
        return dict(sorted(files.items()))


def read_rcc(source: bytes | str | Path, *, origin: str | None = None) -> dict[str, bytes]:
    """Return every file in a Qt resource bundle as ``{path: bytes}``, sorted by path.

    Paths are relative, joined with ``/`` (the root's empty name is dropped). zstd-compressed
    entries are decoded when the ``zstandard`` module is importable, otherwise skipped with a
    warning. Raises :class:`RccError` on anything that is not an rcc bundle of version 1 to 3.
    """
    if isinstance(source, (str, Path)):
        origin = origin or str(source)
        source = Path(source).read_bytes()
    reader = _Reader(bytes(source), origin or "<bytes>")
    files = reader.walk()
    if reader.skipped_zstd:
        warnings.warn(
            f"{reader.origin}: skipped {len(reader.skipped_zstd)} zstd-compressed entries "
            "(pip install zstandard to read them)", stacklevel=2,
        )
    return files
