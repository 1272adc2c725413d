"""Dataset stylisation benchmark: images/s of ``stylize-dataset`` against a stylize-datasets-like loop.

    python scripts/bench_dataset.py                          # magenta and adain, about 10 minutes on 2 cores
    python scripts/bench_dataset.py --methods magenta --contents 16 --rounds 1
    python scripts/bench_dataset.py --device cuda --contents 384 --styles 24 --batch-size 16 --workers 8 \
        --rounds 3 --warmup 1

**Data.** ``--contents`` ImageNet-like JPEGs (quality 90, sizes drawn around 500x375, both
orientations) in four class folders, cut from the sample pictures in ``assets/content``, and
``--styles`` painting-like JPEGs of about 1000x800 (the sample styles enlarged, flipped, turned):
the shapes of Stylized-ImageNet's inputs (ImageNet photos, Painter by Numbers paintings).

**Baseline**, what bethgelab/stylize-datasets does for every content file, one at a time: read
the content (PIL), for each of its ``--num-styles`` styles draw one, read it (PIL), resize it,
stylise the pair (the style encoded again for every pair), write the output. For adain this is
pytorch-AdaIN's network code as ``scripts/baseline.py`` restates it (fp32, NCHW,
``torch.no_grad``); for magenta, the networks as a straightforward PyTorch port runs them (fp32,
NCHW, the conditional instance norm written out as in the paper, ``scripts/baseline.py``).

**Ours**, ``styletransfer stylize-dataset`` through its API: contents decoded and resized in
``--workers`` loader processes, ``--batch-size`` images per network pass, each style represented
once (computed in this run: a fresh cache), outputs written by writer threads.

Both use the same contents, styles (ours' deterministic draw; the baseline draws its own), sizes
(content kept, styles at 512 for adain and 256 for magenta), the same weights, outputs in JPEG.
Time counts from the first file read to the last file written, networks loaded beforehand in
both (the baseline's too). The two alternate, ``--rounds`` times each, baseline first; the median
of each is reported, with the ratio. AdaIN's weights are random (time does not depend on them;
its decoder is calibrated as in ``scripts/bench.py``); magenta's are the real networks.

Prints a Markdown table and writes JSON (``--json``, default bench_dataset.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from styletransfer.dataset import DatasetConfig, stylize_dataset  # noqa: E402
from styletransfer.dataset.plan import STYLE_SIZES, relative_images  # noqa: E402
from styletransfer.imageio import load_image, save_image  # noqa: E402
from styletransfer.realtime import prepare_image  # noqa: E402

CLASSES = 4
CONTENT_SIZE = (500, 375)
STYLE_SIZE = (1000, 800)


def make_data(folder: Path, contents: int, styles: int) -> tuple[Path, Path]:
    """ImageNet-like contents in class folders and painting-sized styles, as JPEG files."""
    rng = np.random.default_rng(0)
    photos = [Image.open(p).convert("RGB") for p in sorted((ROOT / "assets" / "content").glob("*.jpg"))]
    paintings = [Image.open(p).convert("RGB") for p in sorted((ROOT / "assets" / "style").glob("*.jpg"))]
    content_root, style_root = folder / "content", folder / "styles"
    for index in range(contents):
        photo = photos[index % len(photos)]
        width, height = (int(s * rng.uniform(0.85, 1.15)) for s in CONTENT_SIZE)
        if index % 4 == 3:
            width, height = height, width
        side = int(min(photo.size) * rng.uniform(0.6, 1.0))
        left, top = (int(rng.integers(0, s - side + 1)) for s in photo.size)
        image = photo.crop((left, top, left + side, top + side)).resize((width, height), Image.BICUBIC)
        path = content_root / f"class{index % CLASSES}" / f"image{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90)
    style_root.mkdir(parents=True)
    for index in range(styles):
        painting = paintings[index % len(paintings)].resize(STYLE_SIZE, Image.BICUBIC)
        if index // len(paintings) % 2:
            painting = painting.transpose(Image.FLIP_LEFT_RIGHT)
        if index // len(paintings) % 4 >= 2:
            painting = painting.transpose(Image.ROTATE_90)
        painting.save(style_root / f"painting{index:04d}.jpg", quality=90)
    return content_root, style_root


# --- the two sides ---------------------------------------------------------------------------------


def adain_networks(device: str):
    """pytorch-AdaIN's networks (random, decoder calibrated) and our AdaINModel with the same weights."""
    import bench

    class Args:
        encoder_weights = decoder_weights = None

    vgg, decoder, model = bench.adain_networks(Args, torch.device("cpu"))
    return vgg.to(device).eval(), decoder.to(device).eval(), model


def baseline(method: str, networks, content_root: Path, style_root: Path, out: Path, args) -> float:
    """stylize-datasets' loop: one pair at a time, the style read and encoded again for each."""
    import baseline as B

    contents, styles = relative_images(content_root, "contents"), relative_images(style_root, "styles")
    style_size = STYLE_SIZES[method]
    draw = random.Random(0)
    start = time.perf_counter()
    for relative in contents:
        content = load_image(content_root / relative).to(args.device).unsqueeze(0)
        for k in range(args.num_styles):
            style = prepare_image(load_image(style_root / draw.choice(styles)), style_size, False)
            style = style.to(args.device).unsqueeze(0)
            if method == "adain":
                vgg, decoder, _ = networks
                with torch.no_grad():
                    image = B.adain_style_transfer(vgg, decoder, content, style)
                image = image[..., :content.shape[-2], :content.shape[-1]].clamp(0, 1)
            else:
                image = B.magenta_style_transfer(*networks, content, style)
            name = Path(relative).with_name(f"{Path(relative).stem}_{k}.jpg")
            save_image(image.cpu(), out / name)
    return time.perf_counter() - start


def ours(method: str, networks, content_root: Path, style_root: Path, out: Path, args) -> float:
    config = DatasetConfig(method=method, num_styles=args.num_styles, batch_size=args.batch_size,
                           workers=args.workers, ext="jpg")
    extra = {} if method == "magenta" else {"decoder": networks[2].decoder, "weights": networks[2].encoder}
    start = time.perf_counter()
    run = stylize_dataset(content_root, style_root, out, config, style_cache=out.parent / f"{out.name}.cache",
                          device=args.device, **extra)
    assert run.written == args.contents * args.num_styles, run
    return time.perf_counter() - start - run.seconds_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="magenta,adain")
    parser.add_argument("--contents", type=int, default=32)
    parser.add_argument("--styles", type=int, default=2, help="16 contents per style, as in Stylized-ImageNet")
    parser.add_argument("--num-styles", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=0, help="uncounted rounds first (a GPU's kernel selection)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default="bench_dataset.json")
    args = parser.parse_args()
    from bench_video import cpu_model

    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        content_root, style_root = make_data(folder, args.contents, args.styles)
        for method in args.methods.split(","):
            if method == "magenta":
                import baseline as B

                from styletransfer.magenta.stylizer import MagentaConfig, load_stylizer

                stylizer = load_stylizer(MagentaConfig(), device=args.device)
                networks = B.magenta_naive(stylizer.predictor, stylizer.transformer)
            else:
                networks = adain_networks(args.device)
            times = {"baseline": [], "ours": []}
            for index in range(-args.warmup, args.rounds):  # negative: warm-up rounds, not counted
                for side, function in (("baseline", baseline), ("ours", ours)):
                    out = folder / f"{method}-{side}-{index}"
                    seconds = function(method, networks, content_root, style_root, out, args)
                    if index >= 0:
                        times[side].append(seconds)
                    print(f"{method} {side} round {index}: {seconds:.1f} s", flush=True)
            outputs = args.contents * args.num_styles
            base, mine = statistics.median(times["baseline"]), statistics.median(times["ours"])
            rows.append({"method": method, "outputs": outputs, "baseline_images_per_s": outputs / base,
                         "ours_images_per_s": outputs / mine, "speedup": base / mine, "seconds": times,
                         "load": os.getloadavg()[0]})
    data = {"cpu": cpu_model(), "device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "args": vars(args), "rows": rows}
    Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    print(f"\n{data['cpu']}, {data['threads']} threads, device {args.device}; {args.contents} contents × "
          f"{args.num_styles} styles from {args.styles}, batch {args.batch_size}, {args.workers} loader workers\n")
    print("| method | baseline images/s | ours images/s | speedup |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['baseline_images_per_s']:.3g} | {row['ours_images_per_s']:.3g} | "
              f"{row['speedup']:.2f}× |")


if __name__ == "__main__":
    main()
