"""What ``stylize-dataset`` writes, decided before any work: the content files, the style of
each (content, k), the output paths, the chunks of work and which process takes each.

Everything here is a pure function of the two folders' sorted file lists, the seed and the
settings, so a rerun, a run with more data-loader workers and a run over more processes agree
on every output and every style.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ImageError, UsageError
from ..imageio import IMAGE_EXTENSIONS, OUTPUT_FORMATS
from ..methods import METHODS, feedforward_methods
from ..precision import DEFAULT_PRECISION

MANIFEST_FORMATS = ("csv", "jsonl")
# each method's default style size, read from its entry (kept for scripts/bench_dataset.py)
STYLE_SIZES = {name: method.style_size for name, method in METHODS.items() if method.feedforward and method.style_images}


@dataclass(frozen=True)
class DatasetConfig:
    """Every setting of a ``stylize-dataset`` run. The fields above ``batch_size`` decide the
    outputs and are recorded in the output folder (``SETTINGS_FILE``); the rest only how fast
    they are made."""

    method: str = "magenta"
    num_styles: int = 1  # outputs per content image, each with another style
    alpha: float = 1.0
    content_size: int = 0  # shorter side; 0 keeps each image's size (stylize-datasets' default)
    style_size: int | None = None  # shorter side; None: the method's default (Method.style_size)
    crop: bool = False  # centre crop to a square after resizing
    ext: str | None = None  # output extension; None keeps each content's own
    seed: int = 0
    precision: str = DEFAULT_PRECISION
    batch_size: int = 8  # images per pass through the networks
    workers: int = 2  # data-loader processes decoding and resizing; 0: in the main process
    manifest_format: str = "csv"

    def validate(self) -> "DatasetConfig":
        methods = feedforward_methods(style_images=True)
        if self.method not in methods:
            raise UsageError(f"--method {self.method!r}: stylize-dataset runs {', '.join(methods)}")
        if self.num_styles < 1:
            raise UsageError(f"--num-styles must be ≥ 1, got {self.num_styles}")
        self.method_config().validate()  # alpha, sizes and precision, as the method checks them
        if self.ext is not None and output_suffix(self.ext) not in OUTPUT_FORMATS:
            raise UsageError(f"--ext {self.ext!r}: use one of {', '.join(sorted(s[1:] for s in OUTPUT_FORMATS))}")
        if self.batch_size < 1 or self.workers < 0:
            raise UsageError("--batch-size must be ≥ 1 and --workers ≥ 0")
        if self.manifest_format not in MANIFEST_FORMATS:
            raise UsageError(f"--manifest-format: use one of {', '.join(MANIFEST_FORMATS)}")
        return self

    def method_config(self):
        """The method's own config (MagentaConfig, AdaINConfig, WCTConfig, ...) with these settings."""
        return METHODS.get(self.method).make_config(alpha=self.alpha, content_size=self.content_size,
                                                    style_size=self.resolved_style_size, crop=self.crop,
                                                    precision=self.precision)

    @property
    def resolved_style_size(self) -> int:
        return METHODS.get(self.method).style_size if self.style_size is None else self.style_size

    def output_settings(self) -> dict:
        """The settings that decide the outputs (what a resumed run must repeat)."""
        settings = asdict(self)
        for speed_only in ("batch_size", "workers", "manifest_format"):
            settings.pop(speed_only)
        settings["style_size"] = self.resolved_style_size
        return settings

    @property
    def contents_per_chunk(self) -> int:
        """Contents per unit of work: a chunk's K outputs each fill one network batch together."""
        return max(1, self.batch_size // self.num_styles)


def output_suffix(ext: str) -> str:
    return "." + ext.lower().lstrip(".")


@dataclass(frozen=True)
class Output:
    """One output file: content ``content`` (an index into the plan's contents) stylised with style
    ``style`` (an index into its styles); ``k`` counts the content's outputs."""

    content: int
    k: int
    style: int
    path: str  # relative to the output root, POSIX separators


@dataclass
class Plan:
    content_root: Path
    style_root: Path
    out_root: Path
    contents: list[str]  # relative paths, sorted
    styles: list[str]
    outputs: list[Output]  # content-major: content i's outputs are outputs[i·K:(i+1)·K]
    config: DatasetConfig

    def chunks(self) -> list[range]:
        """Consecutive runs of contents, ``config.contents_per_chunk`` each: the unit of work,
        the same whatever the number of processes or workers."""
        size = self.config.contents_per_chunk
        return [range(start, min(start + size, len(self.contents))) for start in range(0, len(self.contents), size)]

    def outputs_of(self, content: int) -> list[Output]:
        count = self.config.num_styles
        return self.outputs[content * count:(content + 1) * count]

    def content_path(self, content: int) -> Path:
        return self.content_root / self.contents[content]

    def style_path(self, style: int) -> Path:
        return self.style_root / self.styles[style]

    def output_path(self, output: Output) -> Path:
        return self.out_root / output.path


def rank_chunks(chunks: Sequence[range], rank: int, world_size: int) -> list[range]:
    """The chunks process ``rank`` of ``world_size`` takes: every world_size-th, from its rank on."""
    return list(chunks[rank::world_size])


def relative_images(root: Path, flag: str) -> list[str]:
    """Image files below ``root`` (recursive, by extension) as sorted POSIX relative paths;
    hidden files and folders are left out."""
    if not root.is_dir():
        raise UsageError(f"{flag} {str(root)!r} is not a folder: pass a folder of images")
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        base = Path(folder).relative_to(root)
        found += [(base / name).as_posix() for name in files
                  if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS]
    if not found:
        raise ImageError(f"{flag} {str(root)!r} holds no images (files ending in {', '.join(IMAGE_EXTENSIONS)})")
    return sorted(found)


def choose_styles(relative_path: str, seed: int, styles: Sequence[str], count: int) -> list[int]:
    """``count`` different style indices for one content: the styles whose sha256(seed, content
    path, style path) are smallest, in that order (rendezvous hashing).

    A choice depends on the seed, the content's relative path and the style paths, never on the
    order of files, other contents, workers or processes, nor on a random generator's algorithm.
    Adding a style changes a content's choice only where the new style ranks among its first
    ``count``; removing one changes only the contents that had chosen it.
    """
    def rank(index: int) -> bytes:
        return hashlib.sha256(f"{seed}\0{relative_path}\0{styles[index]}".encode()).digest()

    return sorted(range(len(styles)), key=rank)[:count]


def output_relpath(content: str, k: int, num_styles: int, ext: str | None) -> str:
    """``dir/name.ext`` for one style per content, ``dir/name_k.ext`` for several; the content's
    own extension unless ``ext`` is given (one that cannot be written becomes .png)."""
    path = Path(content)
    suffix = output_suffix(ext) if ext is not None else path.suffix
    if suffix.lower() not in OUTPUT_FORMATS:
        suffix = ".png"
    name = f"{path.stem}_{k}{suffix}" if num_styles > 1 else f"{path.stem}{suffix}"
    return path.with_name(name).as_posix()


def make_plan(content_root: str | os.PathLike, style_root: str | os.PathLike, out_root: str | os.PathLike,
              config: DatasetConfig) -> Plan:
    """Every output of the run, checked before any work: the folders exist and hold images, the
    output folder is neither inside an input folder nor one of them, enough styles, no two
    contents writing one file."""
    config = config.validate()
    content_root, style_root, out_root = Path(content_root), Path(style_root), Path(out_root)
    _check_folders(content_root, style_root, out_root)
    contents = relative_images(content_root, "CONTENT_ROOT")
    styles = relative_images(style_root, "STYLE_ROOT")
    if config.num_styles > len(styles):
        raise UsageError(f"--num-styles {config.num_styles} but STYLE_ROOT holds {len(styles)} images: "
                         f"use --num-styles {len(styles)} or fewer")
    outputs, writers = [], {}
    for index, content in enumerate(contents):
        chosen = choose_styles(content, config.seed, styles, config.num_styles)
        for k, style in enumerate(chosen):
            path = output_relpath(content, k, config.num_styles, config.ext)
            if path in writers:
                raise UsageError(f"{writers[path]} and {content} would both write {path}: rename one "
                                 "(or choose another --ext)")
            writers[path] = content
            outputs.append(Output(index, k, style, path))
    return Plan(content_root, style_root, out_root, contents, styles, outputs, config)


def _check_folders(content_root: Path, style_root: Path, out_root: Path) -> None:
    if out_root.exists() and not out_root.is_dir():
        raise UsageError(f"-o {str(out_root)!r} is a file: name an output folder")
    resolved = out_root.resolve()
    for flag, root in (("CONTENT_ROOT", content_root), ("STYLE_ROOT", style_root)):
        root = root.resolve()
        if resolved == root or root in resolved.parents or resolved in root.parents:
            raise UsageError(f"-o {str(out_root)!r} overlaps {flag} {str(root)!r}: choose an output folder "
                             "outside the inputs")

