"""Seconds per training step of each objective and precision, side by side (docs/TRAINING.md).

One process, the same batch for every arm, the arms interleaved round by round so that a drift
of the machine's speed touches them alike; the median over rounds after one warm-up round. A
step is what ``styletransfer train`` does per iteration: the losses, backward, Adam's update.

    python scripts/bench_training.py --crop 128 --batch 8 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from styletransfer import load_encoder
from styletransfer.adain.losses import adain_losses, reconstruction_losses, style_balance
from styletransfer.precision import dtype_of, native_bf16
from styletransfer.training.loop import _build_decoder

ARMS = {  # name → (objective, options); the losses of docs/TRAINING.md
    "reconstruction, pixel only": ("reconstruction", {"features": False}),
    "reconstruction, pixel + relu4_1": ("reconstruction", {"features": True}),
    "adain (pytorch-AdaIN's losses)": ("adain", {}),
    "adain + style balance + identity loss": ("adain", {"identity": True, "balance": True}),
}


def step_seconds(arm: str, precision: str, encoder, content, style, weights) -> float:
    objective, options = ARMS[arm]
    decoder = _build_decoder("none", 0)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-4)
    dtype = dtype_of(precision)
    start = time.perf_counter()
    if objective == "reconstruction":
        losses = reconstruction_losses(encoder, decoder, content, features=options["features"], dtype=dtype)
        total = losses.pixel + losses.content
    else:
        losses = adain_losses(encoder, decoder, content, style, dtype=dtype, identity=options.get("identity", False),
                              layer_weights=weights if options.get("balance") else None)
        total = losses.content + 10 * losses.style + (losses.pixel if losses.pixel is not None else 0)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    encoder = load_encoder()
    content = torch.rand(args.batch, 3, args.crop, args.crop)
    style = torch.rand(args.batch, 3, args.crop, args.crop)
    weights = style_balance(encoder, style)
    precisions = ["fp32", "bf16"] if native_bf16("cpu") else ["fp32"]
    times: dict[tuple[str, str], list[float]] = {(arm, p): [] for arm in ARMS for p in precisions}
    for round_ in range(args.rounds + 1):
        for key in times:
            seconds = step_seconds(*key, encoder, content, style, weights)
            if round_:  # round 0 warms oneDNN's kernels up
                times[key].append(seconds)
    rows = [{"objective": arm, "precision": p, "seconds_per_step": statistics.median(values),
             "min": min(values), "max": max(values)} for (arm, p), values in times.items()]
    base = next(r["seconds_per_step"] for r in rows if r["objective"].startswith("adain (") and r["precision"] == "fp32")
    print(f"batch {args.batch}, {args.crop}² crops, median of {args.rounds} steps (min–max):")
    print("| objective | precision | s/step | vs adain fp32 |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['objective']} | {r['precision']} | {r['seconds_per_step']:.2f} ({r['min']:.2f}–{r['max']:.2f}) | "
              f"{r['seconds_per_step'] / base:.2f} |")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"crop": args.crop, "batch": args.batch, "rounds": args.rounds, "rows": rows}, stream, indent=1)


if __name__ == "__main__":
    main()
