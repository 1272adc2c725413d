"""Optimisation speed against pastiche, the package that ships the original VGG19's weights.

Both programs run the same objective on the same pre-sized pair: pastiche's defaults (content
0.01·MSE at relu4_2; style Σ_l 10/C_l² · MSE(G/M, A/M') over relu1_1…relu5_1; no TV), which our
``stylize`` reproduces exactly with ``--no-normalize``, its content/style weights and per-layer
weights (``matched_flags``). Every output is scored by ONE function,
``pastiche_objective`` below, in float32 on the saved PNG, so precision and pixel space cannot
flatter either side.

    python scripts/bench_pastiche.py                      # 256 px, 100 evaluations, 3 pairs
    python scripts/bench_pastiche.py --size 256 --steps 100 --runs 3 --ours-steps 30,40,50,70,100

Reports, per evaluation count: whole-process wall seconds (median over rounds; each round runs
pastiche and then each of our counts, so a drift in the machine's speed hits every command),
the common objective of each output, and the time-to-objective ratio: pastiche's time for
``--steps`` evaluations over ours for the fewest evaluations whose output scores at or below
pastiche's. Needs ``pip install pastiche==1.6.0`` (a dependency of this project).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
CONTENT_FACTOR = 0.01  # pastiche's default content layer weight
STYLE_FACTOR = 10.0  # pastiche's default style layer weight is 10 / C²


def prepare(content: Path, style: Path, size: int, folder: Path) -> tuple[Path, Path]:
    """The pair at the sizes both programs use, so that neither resizes: content long edge ``size``;
    style with as many pixels as the content (pastiche's rule), square styles exactly so."""
    image = Image.open(content).convert("RGB")
    scale = size / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    pixels = image.width * image.height
    art = Image.open(style).convert("RGB")
    height = round((pixels * art.height / art.width) ** 0.5)
    width = round(art.width / art.height * height)
    art = art.resize((width, height), Image.BICUBIC)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "content.png", folder / "style.png"
    image.save(paths[0])
    art.save(paths[1])
    return paths


def _load(path: Path) -> torch.Tensor:
    from styletransfer.imageio import load_image

    return load_image(path).unsqueeze(0)  # (1, 3, H, W) RGB in [0, 1]


def pastiche_objective(output: Path, content: Path, style: Path) -> float:
    """pastiche's default objective of ``output``, in float32 with the original VGG19 (the same
    network pastiche loads): 0.01·mean((F−P)²) at relu4_2 + Σ 10/C² · mean((G/M − A/M')²)."""
    from styletransfer import load_encoder
    from styletransfer.losses.functional import gram_matrix

    encoder = load_encoder("vgg19")
    layers = (*STYLE_LAYERS, CONTENT_LAYER)
    with torch.no_grad():
        x, p, s = (encoder(_load(path), layers) for path in (output, content, style))
        total = CONTENT_FACTOR * torch.mean((x[CONTENT_LAYER] - p[CONTENT_LAYER]) ** 2)
        for layer in STYLE_LAYERS:
            channels = x[layer].shape[1]
            total += STYLE_FACTOR / channels**2 * torch.mean((gram_matrix(x[layer]) - gram_matrix(s[layer])) ** 2)
    return float(total)


def matched_flags(content: Path, style: Path) -> list[str]:
    """Our ``stylize`` flags whose objective IS pastiche's (as a function of the image).

    Ours (no normalisation): w_c ½‖F−P‖² + w_s Σ λ_l ‖G/M − A/M'‖² / (4C_l²). pastiche's:
    0.01‖F−P‖²/(C·M) + Σ 10‖G/M − A/M'‖² / C_l⁴. So w_c = 0.02/(C·M) at relu4_2 and
    w_s λ_l = 40 / C_l². (Equal values, not merely proportional: L-BFGS's first step depends on
    the gradient's scale, and a scaled-up objective overflows its float32 curvature products.)
    """
    from styletransfer import load_encoder

    encoder = load_encoder("vgg19")
    with torch.no_grad():
        features = encoder(_load(content), (*STYLE_LAYERS, CONTENT_LAYER))
    target = features[CONTENT_LAYER]
    content_weight = 2 * CONTENT_FACTOR / (target.shape[1] * target.shape[2] * target.shape[3])
    weights = [4 * STYLE_FACTOR / features[layer].shape[1] ** 2 for layer in STYLE_LAYERS]
    style_weight = sum(weights)
    size = max(_load(content).shape[-2:])
    style_long = max(_load(style).shape[-2:])
    return ["--no-normalize", "--tv-weight", "0", "--content-weight", repr(content_weight),
            "--style-weight", repr(style_weight),
            "--layer-weights", ",".join(repr(w / style_weight) for w in weights),
            "--style-layers", ",".join(STYLE_LAYERS), "--content-layers", CONTENT_LAYER,
            "--size", str(size), "--style-scale", repr(style_long / size)]


def evaluation_gmac(content: Path) -> float:
    """Multiply-accumulates of one objective evaluation, in 10⁹: the convs up to conv5_1 forward,
    and again for the gradient with respect to their inputs (the weights get none)."""
    from styletransfer.encoder import VGG19_LAYERS, _walk_config

    height, width = _load(content).shape[-2:]
    total = 0
    for name, channels_in, channels_out in _walk_config()[: VGG19_LAYERS.index("conv5_1") + 1]:
        if name.startswith("pool"):
            height, width = height // 2, width // 2
        elif name.startswith("conv"):
            total += channels_in * channels_out * 9 * height * width
    return 2 * total / 1e9


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} … failed: {process.stderr.strip()[-400:]}")
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=ROOT / "assets/content/chelsea.jpg")
    parser.add_argument("--style", type=Path, default=ROOT / "assets/style/mosaic.jpg")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100, help="pastiche's evaluations (its L-BFGS steps)")
    parser.add_argument("--ours-steps", default="", help="our evaluation counts to try (default: --steps)")
    parser.add_argument("--precision", default="auto", help="ours: auto, fp32 or bf16")
    parser.add_argument("--optimizer", default="lbfgs", help="ours: lbfgs (as pastiche), lbfgs-wolfe, auto")
    parser.add_argument("--runs", type=int, default=3, help="paired runs per count (median)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.ours_steps.split(",")] if args.ours_steps else [args.steps]
    folder = Path(tempfile.mkdtemp(prefix="bench_pastiche_"))
    content, style = prepare(args.content, args.style, args.size, folder)
    flags = matched_flags(content, style)
    theirs = folder / "pastiche.png"
    pastiche = [sys.executable, "-m", "pastiche", "-c", str(content), "-s", str(style), "-o", str(theirs),
                "--size", str(args.size), "--num-steps", str(args.steps), "--device", "cpu", "--seed", "0",
                "--no-verbose"]
    commands = {}
    for count in counts:
        mine = folder / f"ours_{count}.png"
        commands[count] = (mine, [sys.executable, "-m", "styletransfer", "stylize", str(content), str(style), "-o",
                                  str(mine), "--steps", str(count), "--optimizer", args.optimizer, "--precision",
                                  args.precision, "--no-progress", *flags])
    pastiche_times, ours_times = [], {count: [] for count in counts}
    for _ in range(args.runs):  # pastiche, then each of ours, in turn: a drift in the machine's speed hits all
        pastiche_times.append(timed(pastiche))
        for count, (_, command) in commands.items():
            ours_times[count].append(timed(command))
    rows = [{"evaluations": count, "seconds": statistics.median(ours_times[count]), "runs": ours_times[count],
             "objective": pastiche_objective(commands[count][0], content, style)} for count in counts]
    reference = {"evaluations": args.steps, "seconds": statistics.median(pastiche_times), "runs": pastiche_times,
                 "objective": pastiche_objective(theirs, content, style)}
    reached = [row for row in rows if row["objective"] <= reference["objective"]]
    result = {"size": args.size, "precision": args.precision, "optimizer": args.optimizer, "pastiche": reference,
              "ours": rows, "cpu": cpu_name(), "flags": flags}
    if reached:
        best = min(reached, key=lambda row: row["seconds"])
        result["time_to_objective_ratio"] = reference["seconds"] / best["seconds"]
    if len(rows) > 1:  # whole-process differences cancel start-up and the targets' encoding
        low, high = rows[0], rows[-1]
        per_evaluation = (high["seconds"] - low["seconds"]) / (high["evaluations"] - low["evaluations"])
        result["seconds_per_evaluation"] = per_evaluation
        result["gmac_per_evaluation"] = evaluation_gmac(content)
        result["gmac_per_second"] = result["gmac_per_evaluation"] / per_evaluation
    same = [row for row in rows if row["evaluations"] == args.steps]
    if same:
        result["same_evaluations_ratio"] = reference["seconds"] / same[0]["seconds"]
    print(f"pastiche  {args.steps:>4} evaluations  {reference['seconds']:6.1f} s  objective {reference['objective']:.4g}")
    for row in rows:
        print(f"ours      {row['evaluations']:>4} evaluations  {row['seconds']:6.1f} s  objective {row['objective']:.4g}")
    if "gmac_per_second" in result:
        print(f"ours per evaluation: {result['seconds_per_evaluation']:.3f} s, {result['gmac_per_evaluation']:.1f} GMAC "
              f"→ {result['gmac_per_second']:.0f} GMAC/s")
    for key in ("same_evaluations_ratio", "time_to_objective_ratio"):
        if key in result:
            print(f"{key}: {result[key]:.2f}× (pastiche's seconds / ours)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
