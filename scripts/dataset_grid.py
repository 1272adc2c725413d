"""A picture of a ``stylize-dataset`` run: each content beside its outputs, read from the manifest.

    styletransfer stylize-dataset assets/content assets/style -o /tmp/sample-run --num-styles 3 --content-size 256
    python scripts/dataset_grid.py /tmp/sample-run assets/content -o docs/dataset/grid.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from styletransfer.dataset import records as R  # noqa: E402

CELL = 200
LABEL = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_root", type=Path)
    parser.add_argument("content_root", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    manifest = next(p for p in (args.out_root / "manifest.csv", args.out_root / "manifest.jsonl") if p.exists())
    rows: dict[str, list[dict]] = {}
    for row in R.read_rows(manifest, R.MANIFEST):
        rows.setdefault(row["content"], []).append(row)
    columns = 1 + max(len(group) for group in rows.values())
    grid = Image.new("RGB", (columns * CELL, len(rows) * (CELL + LABEL)), "white")
    draw = ImageDraw.Draw(grid)
    for y, (content, group) in enumerate(sorted(rows.items())):
        cells = [(args.content_root / content, content)] + [(args.out_root / r["output"], r["style"])
                                                            for r in sorted(group, key=lambda r: r["k"])]
        for x, (path, label) in enumerate(cells):
            image = Image.open(path).convert("RGB")
            image.thumbnail((CELL - 4, CELL - 4))
            top = y * (CELL + LABEL)
            grid.paste(image, (x * CELL + (CELL - image.width) // 2, top + LABEL + (CELL - image.height) // 2))
            draw.text((x * CELL + 4, top + 2), label, fill="black")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.output)


if __name__ == "__main__":
    main()
