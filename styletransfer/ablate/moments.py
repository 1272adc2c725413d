"""``ablate moments``: which statistics of the feature distribution carry style?

Each level of the moment hierarchy (docs/LOSSES.md) is matched by optimisation — means
(``mmd-linear``), means and standard deviations (``bn-stats``), means and covariances
(``mean-cov``), the uncentred second moment (``gram``), the whole distribution (``mmd-rbf``,
``sliced-wasserstein``) — on every (content, style) pair of two folders, at equal strength
(each style weight calibrated to the ``gram`` run's content loss). Every output is then measured
at every level and by the independent judge (Magenta's style embedding), and the table gives each
mean over pairs with its 95% interval. The judge's paired differences against ``gram`` say which
levels stylise more or less than the Gram matrix, by a test that respects the pairing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UsageError
from ..intervals import format_interval, paired_difference
from ..markdown import markdown_table
from ..weights import DEFAULT_ENCODER
from .data import DEFAULT_CONTENT_DIR
from .report import environment, report_header

LEVELS = ("gram", "mmd-linear", "bn-stats", "mean-cov", "mmd-rbf", "sliced-wasserstein")  # gram first: the reference
WHAT = {"mmd-linear": "means", "bn-stats": "means, stds", "mean-cov": "means, covariances",
        "gram": "uncentred 2nd moment", "mmd-rbf": "whole distribution (kernel)",
        "sliced-wasserstein": "whole distribution (1-D marginals)"}
MIN_PAIRS = 2


@dataclass
class MomentsConfig:
    levels: tuple[str, ...] = LEVELS
    content_dir: str = str(DEFAULT_CONTENT_DIR)  # the package's sample images
    style_dir: str = str(DEFAULT_CONTENT_DIR.parent / "style")
    weights: str = DEFAULT_ENCODER  # the original VGG19, installed with the package
    size: int = 384
    steps: int = 300
    calibrate: int = 3  # runs per level to match gram's content loss
    seed: int = 0
    device: str = "auto"

    def validate(self) -> "MomentsConfig":
        from ..losses import STYLE_LOSSES

        for level in self.levels:
            STYLE_LOSSES.get(level)
        if len(self.levels) < 2:
            raise UsageError("--levels needs at least two losses to compare")
        if self.size < 16 or self.steps < 1 or self.calibrate < 0:
            raise UsageError("--size must be ≥ 16, --steps ≥ 1 and --calibrate ≥ 0")
        return self


QUICK = MomentsConfig(size=128, steps=80, calibrate=2)


def run(config: MomentsConfig, *, command: str, output_dir: str | Path, progress: bool = False) -> dict:
    from ..compare.pairs import compare_folders
    from ..compare.selection import CompareConfig
    from ..devices import resolve_device
    from ..optimize import StylizeConfig

    start = time.perf_counter()
    stylize = StylizeConfig(scales=(config.size,), steps=config.steps, seed=config.seed)
    compare = CompareConfig(stylize=stylize, methods=tuple(config.levels), calibrate=config.calibrate)
    summary = compare_folders(config.content_dir, config.style_dir, Path(output_dir) / "pairs", compare,
                              weights=config.weights, device=config.device, overwrite=True, progress=progress,
                              command=command)
    if len(summary["pairs"]) < MIN_PAIRS:
        raise UsageError(f"ablate moments needs at least {MIN_PAIRS} pairs for an interval, got {len(summary['pairs'])}")
    reports = _pair_reports(Path(output_dir) / "pairs", summary["pairs"])
    reference = summary["methods"][0]
    judge_vs_reference = {
        level: paired_difference([r["judge"][level] for r in reports], [r["judge"][reference] for r in reports])
        for level in summary["methods"][1:]}
    return {"command": command, "config": asdict(config), "environment": environment(resolve_device(config.device)),
            "weights": summary["encoder"], "summary": summary, "judge_vs_reference": judge_vs_reference,
            "reference": reference, "seconds": time.perf_counter() - start}


def _pair_reports(folder: Path, pairs) -> list[dict]:
    import json

    return [json.loads((folder / pair / "report.json").read_text()) for pair in pairs]


def build_markdown(results: dict) -> str:
    summary, reference = results["summary"], results["reference"]
    n = len(summary["pairs"])
    lines = [report_header("Which statistics carry style? (ablate moments)", results), ""]
    lines += [f"{n} pairs (every content × every style), each level optimised at equal strength (style weight "
              f"calibrated to `{reference}`'s content loss, ≤ {results['config']['calibrate']} runs), then measured "
              "at every level (normalised: 1 = the content image, lower = closer to the style) and by the judge "
              "(Magenta's style embedding, optimised by no level). Mean ± 95% interval over pairs.", ""]
    lines += [line for note in summary["notes"] for line in (f"> **Note:** {note}", "")]
    header = ["matched \\ measured", *[f"`{c}`" for c in summary["columns"]], "content loss"]
    rows = [[f"`{m}` ({WHAT.get(m, '')})", *(format_interval(summary["normalized"][m][c]) for c in summary["columns"]),
             format_interval(summary["content_loss"][m])] for m in summary["methods"]]
    lines += [markdown_table(header, rows), ""]
    lines += [f"## The judge against `{reference}`, paired over the {n} pairs", "",
              "Mean of judge(level) − judge(gram) ± 95% interval; negative = the level's outputs are closer to the "
              "style by the judge; *significant* = the interval excludes 0 (paired t-test, 5%).", ""]
    rows = [[f"`{level}`", format_interval(d), "yes" if d["significant"] else "no"]
            for level, d in results["judge_vs_reference"].items()]
    lines += [markdown_table(["level", f"judge − judge(`{reference}`)", "significant"], rows), ""]
    return "\n".join(lines)

