"""Held-out quality of an AdaIN decoder on the original VGG19 (docs/TRAINING.md's table).

Only images the recipe set aside before training are used (``DATA/heldout``; docs/DATA.md):

* reconstruction PSNR: ``--alpha 0``, the decoder of the content's own relu4_1 features, over
  every held-out photo (and a randomly initialised decoder as the floor);
* style and content losses of AdaIN's output against Gatys' optimisation output on the same
  pairs and encoder: Gram and BN statistics at relu1_1…relu4_1 (each normalised by its value on
  the content image, so 1 = no style transferred), content at relu4_1 (relative squared error);
  mean ± 95 % t-interval over pairs;
* a grid of held-out pairs (content | style | AdaIN | WCT | Gatys).

    python scripts/evaluate_decoder.py --decoder weights/vgg19_adain_decoder.safetensors \\
        --data /work/data -o docs/training
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from styletransfer import load_encoder
from styletransfer.adain import load_decoder
from styletransfer.adain.decoder import Decoder, pair_with
from styletransfer.adain.stylizer import AdaINConfig, AdaINStylizer
from styletransfer.compare import build_grid
from styletransfer.imageio import list_images, load_image, resize_edge, resize_to, to_pil
from styletransfer.intervals import format_interval, mean_interval
from styletransfer.losses import functional as LF
from styletransfer.optimize import StylizeConfig, stylize
from styletransfer.wct.stylizer import WCTConfig, WCTStylizer

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu4_1"
TILE = 160


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b) ** 2).mean())
    return 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item()


def reconstruction(stylizer: AdaINStylizer, photos: list[Path], size: int) -> list[float]:
    values = []
    for path in photos:
        content = resize_edge(load_image(path), size)
        statistics = stylizer.represent_style(content)  # alpha 0: the content's own features decoded
        values.append(psnr(stylizer.stylize(content, [statistics]), content))
    return values


def losses(encoder, image: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> dict:
    """:func:`distances` of ``image`` against ``content`` and ``style``, (3, H, W) each, encoded here."""
    with torch.no_grad():
        x, c, s = (encoder(t.unsqueeze(0), STYLE_LAYERS) for t in (image, content, style))
    return distances(x, c, s)


def distances(x: dict, c: dict, s: dict) -> dict:
    """From the encoder's features (layer → (1, C, H, W)) of an image ``x``, its content ``c`` and
    the style ``s``: Gram and BN-statistics distances to the style averaged over STYLE_LAYERS,
    each layer divided by the content's own distance (1: no style transferred); content:
    ‖F − P‖² / ‖P‖² at relu4_1."""
    out = {"gram": 0.0, "bn-stats": 0.0}
    for layer in STYLE_LAYERS:
        for name, loss in (("gram", LF.gram_loss), ("bn-stats", LF.bn_stats_loss)):
            out[name] += float(loss(x[layer], s[layer])) / float(loss(c[layer], s[layer])) / len(STYLE_LAYERS)
    out["content"] = float(((x[CONTENT_LAYER] - c[CONTENT_LAYER]) ** 2).sum() / (c[CONTENT_LAYER] ** 2).sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoder", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the recipe's output folder (docs/DATA.md)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=12, help="held-out (photo, painting) pairs for the losses")
    parser.add_argument("--size", type=int, default=256, help="long edge of every image")
    parser.add_argument("--steps", type=int, default=100, help="Gatys: L-BFGS evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--psnr-only", action="store_true", help="only the reconstruction PSNR (no pairs, no Gatys)")
    args = parser.parse_args()
    start = time.perf_counter()
    encoder = load_encoder()
    decoder, config = load_decoder(args.decoder)
    model, warning = pair_with(encoder, decoder, config)
    if warning:
        raise SystemExit(warning)
    photos = list_images(args.data / "heldout" / "content", recursive=False)
    paintings = list_images(args.data / "heldout" / "style", recursive=False)
    reconstructing = AdaINStylizer(model, AdaINConfig(alpha=0.0, content_size=0, style_size=0))
    trained_psnr = reconstruction(reconstructing, photos, args.size)
    if args.psnr_only:
        print(f"PSNR (alpha 0) over {len(photos)} held-out photos: {format_interval(mean_interval(trained_psnr))} dB")
        return
    torch.manual_seed(args.seed)
    floor = AdaINStylizer(pair_with(encoder, Decoder("none"), config)[0], AdaINConfig(alpha=0.0, content_size=0,
                                                                                     style_size=0))
    random_psnr = reconstruction(floor, photos[:12], args.size)

    rng = random.Random(args.seed)
    pairs = [(rng.choice(photos), rng.choice(paintings)) for _ in range(args.pairs)]
    adain = AdaINStylizer(model, AdaINConfig(content_size=0, style_size=0))
    wct = WCTStylizer(model, WCTConfig(content_size=0, style_size=0))
    gatys = StylizeConfig(scales=(args.size,), steps=args.steps, seed=args.seed)
    rows, tiles = {"adain": [], "wct": [], "gatys": []}, []
    for content_path, style_path in pairs:
        content = resize_edge(load_image(content_path), args.size)
        style = resize_edge(load_image(style_path), args.size)
        outputs = {"adain": adain.stylize(content, [adain.represent_style(style)]),
                   "wct": wct.stylize(content, [wct.represent_style(style)]),
                   "gatys": stylize(content, style, encoder, gatys).image}
        for name, image in outputs.items():
            rows[name].append(losses(encoder, resize_to(image, *content.shape[-2:]), content, style))
        if len(tiles) < 6 * 5:
            names = [content_path.stem[-18:], style_path.stem[-18:], "adain", "wct", f"gatys {args.steps}"]
            for label, image in zip(names, (content, style, *outputs.values())):
                tiles.append(([label], to_pil(resize_edge(image, TILE))))

    summary = {"decoder": str(args.decoder), "config": config, "photos": len(photos), "paintings": len(paintings),
               "pairs": [[c.name, s.name] for c, s in pairs], "size": args.size, "gatys_steps": args.steps,
               "psnr": {"trained": mean_interval(trained_psnr), "random_decoder": mean_interval(random_psnr)},
               "losses": {name: {key: mean_interval([r[key] for r in values]) for key in values[0]}
                          for name, values in rows.items()},
               "seconds": time.perf_counter() - start}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "heldout.json").write_text(json.dumps(summary, indent=2, default=str))
    build_grid(tiles, columns=5).save(args.output / "heldout_grid.png", optimize=True)
    print(f"PSNR (alpha 0) over {len(photos)} held-out photos: trained {format_interval(summary['psnr']['trained'])} dB, "
          f"random decoder {format_interval(summary['psnr']['random_decoder'])} dB")
    for name, values in summary["losses"].items():
        print(f"{name:>6}: " + ", ".join(f"{key} {format_interval(v)}" for key, v in values.items()))
    print(f"wrote {args.output / 'heldout.json'} and heldout_grid.png in {summary['seconds']:.0f}s")


if __name__ == "__main__":
    main()
