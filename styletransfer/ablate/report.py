"""Shared report helpers: summary statistics, Markdown tables, the report header, output files.

Everything here is pure (no tensors, no timing) except ``write_report`` and
``check_output_dir``, which look at the output folder.
"""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import UsageError
from ..files import atomic_write_json, atomic_write_text

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"

RANDOM_WEIGHTS_NOTE = (
    "The encoder has **random weights** (`{source}`): its features are random projections, not "
    "learned ones, so the perceptual losses measure agreement of random-filter statistics. Loss "
    "values, their ranking across arms and the look of the outputs say nothing definite about "
    "real style transfer; rerun without `--weights` (the original VGG19) or with a weights file for that. "
    "Properties that hold for any weights — batch-(in)dependence, which buffers change — are "
    "still tested exactly."
)
TRAINED_WEIGHTS_NOTE = "The encoder has trained weights (`{source}`, sha256 `{sha256}`)."


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std of no values")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance)


def summarize(values: Iterable[float]) -> dict:
    """``{"mean", "std", "n", "values"}`` for one metric over seeds."""
    values = [float(v) for v in values]
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "n": len(values), "values": values}


def fmt(value: float, digits: int = 4) -> str:
    """A number for a table: fixed point for moderate values, scientific otherwise."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.2e}"


def fmt_mean_std(summary: Mapping, digits: int = 4, *, scale: float = 1.0, decimals: int | None = None) -> str:
    """``mean ± std`` (just ``mean`` for one value); ``scale`` e.g. 100 for percentages.

    Significant ``digits`` by default; ``decimals`` gives fixed point instead.
    """
    mean, std = summary["mean"] * scale, summary["std"] * scale
    show = (lambda v: f"{v:.{decimals}f}") if decimals is not None else (lambda v: fmt(v, digits))
    if summary.get("n", 2) == 1:
        return show(mean)
    return f"{show(mean)} ± {show(std)}"


def weights_note(weights: Mapping) -> str:
    source = str(weights.get("source"))
    if source.startswith("random"):
        return RANDOM_WEIGHTS_NOTE.format(source=source)
    return TRAINED_WEIGHTS_NOTE.format(source=source, sha256=weights.get("sha256"))


def report_header(title: str, results: Mapping) -> str:
    """Title, the exact command, where it ran, how long it took, and the encoder weights."""
    env = results["environment"]
    lines = [
        f"# {title}",
        "",
        "Command:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        f"- device: {env['device']} ({env['threads']} CPU threads), torch {env['torch']}, "
        f"python {env['python']}",
        f"- wall time: {results['seconds']:.1f} s",
    ]
    if results.get("weights"):
        weights = results["weights"]
        lines += [f"- encoder weights: `{weights['source']}`", "", weights_note(weights)]
    return "\n".join(lines) + "\n"


def environment(device) -> dict:
    import torch

    return {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "platform": platform.platform()}


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Validate the output folder before any work; it is created when the first file is written,
    so a run that fails early leaves nothing behind. Never replaces a run's results silently."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"-o {str(path)!r} is a file; give a folder for the experiment's outputs")
    if (path / RESULTS_JSON).exists() and not overwrite:
        raise UsageError(f"{str(path / RESULTS_JSON)!r} already exists: choose another -o folder or "
                         "pass --overwrite to replace that run's outputs")
    return path


def write_report(folder: str | os.PathLike, results: Mapping, markdown: str) -> tuple[Path, Path]:
    """``results.json`` and ``results.md`` in ``folder``, each written atomically."""
    folder = Path(folder)
    return atomic_write_json(folder / RESULTS_JSON, results), atomic_write_text(folder / RESULTS_MD, markdown)
