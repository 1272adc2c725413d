"""The manifest (one row per output) and the errors file (one row per unreadable input), in CSV
or JSON Lines, written as per-process shards while a run goes and merged by rank 0 at its end.

A shard is appended chunk by chunk and flushed, so a killed run leaves what it had done; the
merged files are written atomically. ``manifest.{csv,jsonl}`` and ``errors.{csv,jsonl}`` sit at
the top of the output folder, beside the class folders (a folder-per-class loader such as
torchvision's ImageFolder looks at folders only).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Iterable

from ..files import atomic_write_text
from .plan import MANIFEST_FORMATS

MANIFEST_FIELDS = ("output", "content", "style", "k", "method", "alpha", "seed", "content_size", "style_size",
                   "crop", "width", "height", "status")
ERROR_FIELDS = ("input", "role", "error", "outputs", "bytes", "mtime_ns")
MANIFEST, ERRORS = "manifest", "errors"
WRITTEN, EXISTING = "written", "existing"  # a manifest row's status: made by this run, or found complete


def final_path(out_root: Path, kind: str, fmt: str) -> Path:
    return out_root / f"{kind}.{fmt}"


def shard_path(out_root: Path, kind: str, fmt: str, rank: int) -> Path:
    return out_root / f"{kind}.rank{rank}.{fmt}"


def _fields(kind: str) -> tuple[str, ...]:
    return MANIFEST_FIELDS if kind == MANIFEST else ERROR_FIELDS


def _encode(rows: Iterable[dict], kind: str, fmt: str, header: bool) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_fields(kind), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _typed(row: dict, kind: str) -> dict:
    """A CSV row's values back as the JSON types (numbers, booleans, None)."""
    typed = {}
    for key, value in row.items():
        if value == "" and key in ("bytes", "mtime_ns", "width", "height"):
            typed[key] = None
        elif key in ("k", "seed", "content_size", "style_size", "width", "height", "outputs", "bytes", "mtime_ns"):
            typed[key] = int(value)
        elif key == "alpha":
            typed[key] = float(value)
        elif key == "crop":
            typed[key] = value == "True"
        else:
            typed[key] = value
    return typed


def read_rows(path: Path, kind: str) -> list[dict]:
    """The rows of a manifest or errors file (or shard); [] when it does not exist. A last line
    cut short by a kill is dropped."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [_typed(row, kind) for row in csv.DictReader(io.StringIO(text))]


class ShardWriter:
    """This process's manifest and errors shards: started empty, appended and flushed chunk by chunk."""

    def __init__(self, out_root: Path, fmt: str, rank: int) -> None:
        self.fmt = fmt
        self.paths = {kind: shard_path(out_root, kind, fmt, rank) for kind in (MANIFEST, ERRORS)}
        self.streams = {kind: open(path, "w", encoding="utf-8") for kind, path in self.paths.items()}
        if fmt == "csv":
            for kind, stream in self.streams.items():
                stream.write(_encode([], kind, fmt, header=True))

    def add(self, kind: str, rows: list[dict]) -> None:
        if rows:
            stream = self.streams[kind]
            stream.write(_encode(rows, kind, self.fmt, header=False))
            stream.flush()

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()


def previous_rows(out_root: Path, kind: str) -> list[dict]:
    """Rows a previous run left: its merged file (either format) and any shards a killed run left."""
    rows = []
    for fmt in MANIFEST_FORMATS:
        rows += read_rows(final_path(out_root, kind, fmt), kind)
        for shard in sorted(out_root.glob(f"{kind}.rank*.{fmt}")):
            rows += read_rows(shard, kind)
    return rows


def merge(out_root: Path, fmt: str, world_size: int) -> dict[str, int]:
    """Rank 0's last step: every rank's shards merged into ``manifest.{fmt}`` (sorted by output)
    and ``errors.{fmt}`` (sorted by role and input; removed when there are none), every shard and the
    files of the other format removed. Returns the row counts."""
    counts = {}
    for kind in (MANIFEST, ERRORS):
        rows = {}
        for rank in range(world_size):
            for row in read_rows(shard_path(out_root, kind, fmt, rank), kind):
                rows[_key(row, kind)] = row
        merged = [rows[key] for key in sorted(rows)]
        target = final_path(out_root, kind, fmt)
        if merged or kind == MANIFEST:
            atomic_write_text(target, _encode(merged, kind, fmt, header=True))
        else:
            target.unlink(missing_ok=True)
        for other in MANIFEST_FORMATS:
            if other != fmt:
                final_path(out_root, kind, other).unlink(missing_ok=True)
            for shard in out_root.glob(f"{kind}.rank*.{other}"):
                shard.unlink(missing_ok=True)
        counts[kind] = len(merged)
    return counts


def _key(row: dict, kind: str) -> tuple:
    """What a row is about: its output, or its input's role and path (a row per input)."""
    return (row["output"],) if kind == MANIFEST else (row["role"], row["input"])


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(bytes, mtime_ns) of a file, to tell whether an input that failed before has changed since."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
