"""Benchmarks: the package against a plain baseline (scripts/baseline.py), side by side in one run.

    python scripts/bench.py --quick          # CPU, a few minutes (README's table)
    python scripts/bench.py --full --device cuda

Every row runs in its own subprocess, so its peak RSS is its own. Times are medians over
repeats. Weights are random (time does not depend on their values). Prints a table and writes
JSON (``--json``, default bench.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SETTINGS = {
    "quick": {"opt_sizes": [256], "opt_steps": 5, "ttr_size": 256, "ttr_steps": 300,
              "ttr_scales": [128, 256], "ttr_coarse_steps": 150, "repeats": 2},
    "full": {"opt_sizes": [256, 512], "opt_steps": 10, "ttr_size": 512, "ttr_steps": 300,
             "ttr_scales": [256, 512], "ttr_coarse_steps": 200, "repeats": 5},
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sample_images(size: int, device: torch.device, count: int = 1) -> list[torch.Tensor]:
    from styletransfer.imageio import load_image, resize_to

    root = HERE.parent / "assets"
    paths = sorted((root / "content").glob("*.jpg")) + sorted((root / "style").glob("*.jpg"))
    return [resize_to(load_image(paths[i % len(paths)]), size, size).unsqueeze(0).to(device) for i in range(count)]


def encoders(device):
    import baseline as B
    from styletransfer.weights import load_encoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = load_encoder("random:0").to(device)
    vgg = B.vgg19_features()
    vgg.load_state_dict({k.removeprefix("features."): v for k, v in encoder.torchvision_state_dict().items()})
    return encoder, vgg.to(device).eval()


# --- rows ---------------------------------------------------------------------------------


def row_opt_step(args, device) -> dict:
    """Seconds per objective evaluation (forward + backward) for one loss at one size."""
    from styletransfer.optimize import Objective, StylizeConfig

    encoder, _ = encoders(device)
    content, style = sample_images(args.size, device, 2)
    config = StylizeConfig(losses=((args.loss, 1.0),)).validate()
    objective = Objective(encoder, content, [style], config, torch.Generator().manual_seed(0))
    x = content.clone().requires_grad_(True)

    def step():
        x.grad = None
        objective(x)[0].backward()

    return {"seconds": timed(step, device, args.repeats)}


def row_opt_step_baseline(args, device) -> dict:
    import baseline as B

    _, vgg = encoders(device)
    for name in ("IMAGENET_MEAN", "IMAGENET_STD"):
        setattr(B, name, getattr(B, name).to(device))
    content, style = sample_images(args.size, device, 2)
    objective = B.gatys_objective(vgg, content, style, 20.0, 1.0, 1e-3)
    x = content.clone().requires_grad_(True)

    def step():
        x.grad = None
        objective(x).backward()

    return {"seconds": timed(step, device, args.repeats)}


def row_ttr_baseline(args, device) -> dict:
    """Baseline: single-scale L-BFGS for ttr_steps at ttr_size; its final objective."""
    import baseline as B

    _, vgg = encoders(device)
    for name in ("IMAGENET_MEAN", "IMAGENET_STD"):
        setattr(B, name, getattr(B, name).to(device))
    content, style = sample_images(args.size, device, 2)
    _, trace = B.gatys_lbfgs(vgg, content, style, args.steps)
    return {"seconds": trace[-1][0], "objective": min(v for _, v in trace), "final": trace[-1][1],
            "trace": trace}


def row_ttr_ours(args, device) -> dict:
    """Ours: coarse-to-fine; time until the objective at the final size reaches the target."""
    from styletransfer.optimize import StylizeConfig, stylize

    encoder, _ = encoders(device)
    content, style = sample_images(args.size, device, 2)
    scales = tuple(int(s) for s in args.scales.split(","))
    target = args.target
    reached = {}

    def watch(record):
        if record["size"] == scales[-1] and record["total"] <= target and "seconds" not in reached:
            reached["seconds"] = record["seconds"]

    steps = args.steps
    config = StylizeConfig(scales=scales, steps=steps)
    result = stylize(content[0].cpu(), style[0].cpu(), encoder, config, device=device, callback=watch)
    final = [h["total"] for h in result.history if h["size"] == scales[-1]]
    return {"seconds_to_target": reached.get("seconds"), "seconds_total": result.seconds,
            "best_final_scale": min(final), "target": target}


ROWS = {f.__name__.removeprefix("row_"): f for f in (row_opt_step, row_opt_step_baseline, row_ttr_baseline, row_ttr_ours)}


def run_row(name: str, **params) -> dict:
    """Run one row in a fresh subprocess and return its JSON result (plus its peak RSS)."""
    command = [sys.executable, __file__, "--row", name]
    for key, value in params.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"row {name} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU-sized settings (default)")
    parser.add_argument("--full", action="store_true", help="the full table (use a GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default="bench.json")
    # internal: one row in this process
    parser.add_argument("--row", choices=sorted(ROWS))
    parser.add_argument("--size", type=int)
    parser.add_argument("--loss", default="gram")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--scales")
    parser.add_argument("--target", type=float)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.row:
        torch.manual_seed(0)
        result = ROWS[args.row](args, device)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    mode = "full" if args.full else "quick"
    s = SETTINGS[mode]
    report = {"mode": mode, "device": str(device), "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "torch": torch.__version__, "rows": []}
    table = []

    def add(label, ours, base, unit="s"):
        ratio = base / ours if ours and base else None
        report["rows"].append({"row": label, "ours": ours, "baseline": base, "speedup": ratio, "unit": unit})
        table.append((label, ours, base, ratio))
        print(f"{label:<48} {ours if ours is not None else float('nan'):>10.3f} "
              f"{base if base is not None else float('nan'):>10.3f} {ratio if ratio else float('nan'):>8.2f}x", flush=True)

    print(f"{'row':<48} {'ours':>10} {'baseline':>10} {'speedup':>9}")
    from styletransfer.losses import STYLE_LOSSES

    for size in s["opt_sizes"]:
        base = run_row("opt_step_baseline", device=args.device, size=size, repeats=s["repeats"])
        for loss in STYLE_LOSSES.names():
            ours = run_row("opt_step", device=args.device, size=size, loss=loss, repeats=s["repeats"])
            add(f"optimize s/step {loss} @{size}²", ours["seconds"], base["seconds"])
    base = run_row("ttr_baseline", device=args.device, size=s["ttr_size"], steps=s["ttr_steps"])
    ours = run_row("ttr_ours", device=args.device, size=s["ttr_size"], steps=s["ttr_coarse_steps"],
                   scales=",".join(map(str, s["ttr_scales"])), target=base["objective"])
    add(f"optimize time to baseline objective @{s['ttr_size']}²", ours["seconds_to_target"], base["seconds"])
    report["ttr"] = {"baseline": {k: v for k, v in base.items() if k != "trace"}, "ours": ours}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
