"""Choose the magenta encoder's default layers and TV weight by measurement (docs/MAGENTA.md).

For each candidate (style layers, content layer, TV weight) every sample pair is stylised by
optimisation (Gram loss, L-BFGS) and measured:

* style distance: ‖e(out) − e(style)‖ / ‖e(content) − e(style)‖, e the predictor's own 100-d
  style embedding (its last layer, which no candidate uses as a loss layer): 0 = the style's
  embedding reached, 1 = no closer than the content was;
* structure: the correlation of the output's and the content's Sobel edge magnitudes (1 = the
  same edges);
* checkerboard: the mean |2x2 checker filter| response of the output over the content's (the
  stride-2 artefact; 1 = no more than the photo has).

    python scripts/magenta_layers.py --json docs/magenta/layers.json --pictures docs/magenta
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from styletransfer.imageio import load_image, save_image
from styletransfer.magenta.encoder import load_magenta_encoder
from styletransfer.optimize import StylizeConfig, stylize

PAIRS = (("chelsea", "mosaic"), ("coffee", "brushstrokes"), ("rocket", "swirl"))
CANDIDATES = {
    "expand s2-s16 / block6_expand": (("block1_expand", "block3_expand", "block6_expand", "block13_expand"),
                                      ("block6_expand",)),
    "expand s2-s16 / block10_expand": (("block1_expand", "block3_expand", "block6_expand", "block13_expand"),
                                       ("block10_expand",)),
    "depthwise s4-s32 / block10_expand": (("block1_depthwise", "block3_depthwise", "block6_depthwise",
                                           "block13_depthwise"), ("block10_expand",)),
    "block outputs s2-s16 / block10": (("stem", "block2", "block5", "block12"), ("block10",)),
}
BASE = "expand s2-s16 / block6_expand"  # the TV and anti-aliasing rows vary this candidate
TV_WEIGHTS = (1e-3, 1e-2, 5e-2)
ANTIALIAS = (False, True)  # a [1, 2, 1] blur before every stride-2 conv of the encoder


def edges(image: torch.Tensor) -> torch.Tensor:
    gray = image.mean(dim=0, keepdim=True).unsqueeze(0)  # (1, 1, H, W)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(gray, kx), F.conv2d(gray, kx.transpose(-1, -2))
    return (gx.square() + gy.square()).sqrt().flatten()


def structure(output: torch.Tensor, content: torch.Tensor) -> float:
    a, b = edges(output), edges(content)
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def checker(image: torch.Tensor) -> float:
    kernel = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).view(1, 1, 2, 2).repeat(3, 1, 1, 1) / 4
    return float(F.conv2d(image.unsqueeze(0), kernel, groups=3).abs().mean())


def before_after(folder: Path) -> Path:
    """docs/magenta/antialias.png: chelsea + mosaic without and with anti-aliasing, whole and a
    detail at 3x (nearest neighbour, so the checkerboard stays visible)."""
    from PIL import Image

    names = [f"chelsea_mosaic_expand_s2-s16_tv0.001{suffix}.png" for suffix in ("", "_aa")]
    images = [Image.open(folder / "layers" / name).convert("RGB") for name in names]
    box, zoom, gap = (60, 40, 160, 120), 3, 8
    detail = [im.crop(box).resize(((box[2] - box[0]) * zoom, (box[3] - box[1]) * zoom), Image.NEAREST)
              for im in images]
    width = max(d.width for d in detail)
    height = detail[0].height + gap + images[0].height
    sheet = Image.new("RGB", (2 * width + gap, height), "white")
    for i, (whole, part) in enumerate(zip(images, detail)):
        x = i * (width + gap)
        sheet.paste(part, (x, 0))
        sheet.paste(whole, (x + (width - whole.width) // 2, part.height + gap))
    out = folder / "antialias.png"
    sheet.save(out, optimize=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--pictures", type=Path, default=None, help="write each pair's outputs here")
    parser.add_argument("--only-antialias", action="store_true", help="run the anti-aliased setting alone")
    parser.add_argument("--compose-only", action="store_true",
                        help="only rebuild antialias.png from the pictures of an earlier run")
    args = parser.parse_args()
    if args.compose_only:
        print(f"wrote {before_after(args.pictures)}")
        return
    torch.manual_seed(0)
    encoders = {flag: load_magenta_encoder(antialias=flag) for flag in ANTIALIAS}
    predictor = encoders[False].predictor  # the trained network, unmodified, measures the style

    def embed(image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return predictor(image.unsqueeze(0))[0]

    runs = []
    settings = [(name, layers, 1e-3, False) for name, layers in CANDIDATES.items()]
    first = BASE
    settings += [(first, CANDIDATES[first], tv, False) for tv in TV_WEIGHTS if tv != 1e-3]
    settings += [(first, CANDIDATES[first], 1e-3, True)]  # --weights magenta:antialias
    if args.only_antialias:
        settings = settings[-1:]
    for name, (style_layers, content_layers), tv, antialias in settings:
        encoder = encoders[antialias]
        for content_name, style_name in PAIRS:
            content = load_image(f"assets/content/{content_name}.jpg")
            style = load_image(f"assets/style/{style_name}.jpg")
            config = StylizeConfig(style_layers=style_layers, content_layers=content_layers, tv_weight=tv,
                                   scales=(args.size,), steps=args.steps)
            start = time.perf_counter()
            result = stylize(content, style, encoder, config)
            seconds = time.perf_counter() - start
            from styletransfer.imageio import resize_to

            small = resize_to(content.unsqueeze(0), *result.image.shape[-2:])[0]
            style_small = load_image(f"assets/style/{style_name}.jpg")
            e_out, e_style, e_content = embed(result.image), embed(style_small), embed(small)
            row = {"candidate": name, "tv_weight": tv, "antialias": antialias, "pair": f"{content_name}+{style_name}",
                   "style_distance": float((e_out - e_style).norm() / (e_content - e_style).norm()),
                   "structure": structure(result.image, small),
                   "checkerboard": checker(result.image) / checker(small), "seconds": seconds}
            runs.append(row)
            print(json.dumps(row))
            if args.pictures is not None:
                tag = f"{name.split(' /')[0].replace(' ', '_')}_tv{tv:g}{'_aa' if antialias else ''}"
                save_image(result.image, args.pictures / "layers" / f"{content_name}_{style_name}_{tag}.png")
    summary = {}
    for row in runs:
        key = f"{row['candidate']} | tv {row['tv_weight']:g}{' | anti-aliased' if row['antialias'] else ''}"
        summary.setdefault(key, []).append(row)
    table = {key: {metric: sum(r[metric] for r in rows) / len(rows)
                   for metric in ("style_distance", "structure", "checkerboard", "seconds")}
             for key, rows in summary.items()}
    for key, values in table.items():
        print(f"{key}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
    if args.pictures is not None and not args.only_antialias:
        print(f"wrote {before_after(args.pictures)}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"size": args.size, "steps": args.steps, "runs": runs, "mean": table},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
