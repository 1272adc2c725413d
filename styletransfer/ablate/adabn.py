"""adaBN (Li et al. 2016): adapt a BN network to a new domain by re-estimating only its BN
statistics on unlabeled target images, keeping every learned weight.

The experiment: a small BN CNN learns the synthetic shape task (``shapes``) on the source
domain; it is evaluated on shifted target domains before and after adaBN, over ten seeds, beside
two controls that separate adaptation from its ingredients:

- *source re-estimation*: the same pooled re-estimation on unlabeled **source** images. It
  replaces training's running averages by exact pooled statistics without seeing the target, so
  adaBN − this isolates what the target's statistics bring.
- *test-time batch statistics*: the unadapted net normalising each target test batch by that
  batch's own statistics (train-mode BN, batches of ``adapt_batch``): adaptation without a
  separate pass, at the price of predictions that depend on the batch.

Each comparison is paired by seed (same net, same test images) with a 95% t-interval.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..errors import UsageError
from ..intervals import format_interval
from ..markdown import markdown_table
from . import report
from .metrics import CLEAR_GAIN, accuracy, gain_verdict
from .shapes import SHAPES, SHIFTS, make_domain
from .transform_net import conv_block

CLASSIFIER_NORM = "batch"
KERNEL = 3
EVAL_BATCH = 500
# Random streams of one seed: training batches, and the fixed evaluation / adaptation sets.
TRAIN_STREAM, SOURCE_TEST_STREAM, TARGET_TEST_STREAM, ADAPT_STREAM, SOURCE_ADAPT_STREAM = 0, 1, 2, 3, 4
STREAMS = 1000  # seed · STREAMS + stream; iterations get their own offset below
ITERATION_OFFSET = 10**6


@dataclass(frozen=True)
class AdaBNConfig:
    """Settings of ``styletransfer ablate adabn`` (the defaults are the full setting)."""

    shifts: tuple[str, ...] = tuple(SHIFTS.names())
    seeds: tuple[int, ...] = tuple(range(10))
    iters: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 32
    classes: int = len(SHAPES)
    test_images: int = 5000
    adapt_images: int = 5000
    adapt_batch: int = 100
    device: str = "auto"

    def validate(self) -> "AdaBNConfig":
        for shift in self.shifts:
            SHIFTS.get(shift)
        if not 2 <= self.classes <= len(SHAPES):
            raise UsageError(f"--classes must be between 2 and {len(SHAPES)}, got {self.classes}")
        if not self.seeds:
            raise UsageError("--seeds: give at least one seed")
        if self.adapt_batch < 2:
            raise UsageError("--adapt-batch must be ≥ 2 (batch statistics of one image are degenerate)")
        return self


QUICK = AdaBNConfig(iters=500, lr=3e-3, width=16, test_images=1000, adapt_images=1000)


class ShapeClassifier(nn.Module):
    """Four conv blocks (BN after each conv), global average pooling, a linear layer."""

    def __init__(self, classes: int = len(SHAPES), *, width: int = 32, norm: str = CLASSIFIER_NORM) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_block(3, width, KERNEL, norm=norm),
            conv_block(width, 2 * width, KERNEL, stride=2, norm=norm),
            conv_block(2 * width, 4 * width, KERNEL, stride=2, norm=norm),
            conv_block(4 * width, 4 * width, KERNEL, stride=2, norm=norm),
        )
        self.classifier = nn.Linear(4 * width, classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images).mean(dim=(2, 3)))  # (N, classes)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def reestimate_bn(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """adaBN: replace every BN layer's running statistics by the target data's own.

    Layer by layer, in network order: with every earlier BN already re-estimated (and every
    layer in eval mode, so nothing else changes), one pass over ``batches`` accumulates the
    channel sums and sums of squares of this layer's inputs in float64; its running mean and
    variance become the pooled mean and unbiased variance over all the target images' positions,
    the statistics a BN layer would learn from the whole target set at once. (PyTorch's
    cumulative average of per-batch unbiased variances is not the pooled variance: it leaves out
    the spread of the batch means.) No weight, affine parameter or ``num_batches_tracked``
    changes. Returns the number of images in ``batches``; the model is left in eval mode.
    """
    layers = batchnorm_layers(model)
    if not layers:
        raise UsageError("adaBN needs a network with batch-norm layers; this one has none")
    batches = list(batches)
    seen = sum(batch.shape[0] for batch in batches)
    if seen == 0:
        raise UsageError("adaBN got no target images")
    model.eval()
    for layer in layers:
        moments: dict[str, Tensor | int] = {"sum": 0, "squares": 0, "count": 0}

        def accumulate(module, inputs, moments=moments):
            x = inputs[0].detach().double().transpose(0, 1).flatten(1)  # (C, N·H·W)
            moments["sum"] = moments["sum"] + x.sum(dim=1)
            moments["squares"] = moments["squares"] + x.pow(2).sum(dim=1)
            moments["count"] += x.shape[1]

        handle = layer.register_forward_pre_hook(accumulate)
        try:
            with torch.no_grad():
                for batch in batches:
                    model(batch)
        finally:
            handle.remove()
        count = moments["count"]
        mean = moments["sum"] / count
        variance = (moments["squares"] - count * mean**2) / max(count - 1, 1)
        layer.running_mean.copy_(mean.to(layer.running_mean.dtype))
        layer.running_var.copy_(variance.clamp_min(0).to(layer.running_var.dtype))
    return seen


def _generator(seed: int, stream: int, iteration: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed * STREAMS + stream + ITERATION_OFFSET * iteration)


def _chunks(images: Tensor, size: int, device: torch.device) -> Iterable[Tensor]:
    for start in range(0, images.shape[0], size):
        yield images[start : start + size].to(device)


def evaluate(model: nn.Module, images: Tensor, labels: Tensor, device: torch.device) -> float:
    """Accuracy in eval mode (running statistics)."""
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(chunk).cpu() for chunk in _chunks(images, EVAL_BATCH, device)])
    return accuracy(logits, labels)


def with_batch_statistics(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode but for its BN layers, which normalise every batch by its
    own statistics (train-mode BN); the copy's running averages move, ``model``'s never do."""
    probe = copy.deepcopy(model).eval()
    for layer in batchnorm_layers(probe):
        layer.train()
    return probe


def evaluate_batch_statistics(model: nn.Module, images: Tensor, labels: Tensor, batch: int,
                              device: torch.device) -> float:
    """Accuracy with every BN layer normalising each test batch of ``batch`` images by that
    batch's own statistics; ``model`` itself is left untouched."""
    probe = with_batch_statistics(model)
    with torch.no_grad():
        logits = torch.cat([probe(chunk).cpu() for chunk in _chunks(images, batch, device)])
    return accuracy(logits, labels)


def _adapted(model: nn.Module, images: Tensor, config: "AdaBNConfig", device: torch.device) -> nn.Module:
    adapted = copy.deepcopy(model)
    reestimate_bn(adapted, _chunks(images, config.adapt_batch, device))
    return adapted


def train_classifier(config: AdaBNConfig, seed: int, device: torch.device,
                     progress: bool = False) -> tuple[nn.Module, list[float]]:
    """Train on freshly generated source batches (a pure function of the seed); returns the
    model and its training-loss curve."""
    torch.manual_seed(seed)
    model = ShapeClassifier(config.classes, width=config.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.iters)
    losses = []
    model.train()
    bar = tqdm(range(config.iters), desc=f"train seed {seed}", disable=not progress, leave=False)
    for iteration in bar:
        images, labels = make_domain(config.batch_size, _generator(seed, TRAIN_STREAM, iteration),
                                     classes=config.classes)
        loss = nn.functional.cross_entropy(model(images.to(device)), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    return model, losses


ARMS = ("target_before", "target_source_reestimated", "target_batch_stats", "target_after")
ARM_LABELS = {"target_before": "before (training's running averages)",
              "target_source_reestimated": "control: re-estimated on the source",
              "target_batch_stats": "control: test-time batch statistics",
              "target_after": "adaBN (re-estimated on the target)"}
# adaBN against each other arm, paired by seed: (arm, label of the difference)
COMPARISONS = (("target_before", "adaBN − before"),
               ("target_source_reestimated", "adaBN − source re-estimation"),
               ("target_batch_stats", "adaBN − batch statistics"))


def run_seed(config: AdaBNConfig, seed: int, device: torch.device, progress: bool = False) -> dict:
    """Source accuracy, then per shift the target accuracy of every arm (``ARMS``)."""
    start = time.perf_counter()
    model, losses = train_classifier(config, seed, device, progress)
    source = make_domain(config.test_images, _generator(seed, SOURCE_TEST_STREAM), classes=config.classes)
    unlabeled_source, _ = make_domain(config.adapt_images, _generator(seed, SOURCE_ADAPT_STREAM), classes=config.classes)
    source_reestimated = _adapted(model, unlabeled_source, config, device)
    result = {"seed": seed, "source_accuracy": evaluate(model, *source, device), "final_train_loss": losses[-1],
              "source_accuracy_reestimated": evaluate(source_reestimated, *source, device), "shifts": {}}
    for shift in config.shifts:
        target = make_domain(config.test_images, _generator(seed, TARGET_TEST_STREAM), shift=shift,
                             classes=config.classes)
        unlabeled, _ = make_domain(config.adapt_images, _generator(seed, ADAPT_STREAM), shift=shift,
                                   classes=config.classes)
        adapted = _adapted(model, unlabeled, config, device)
        before, after = evaluate(model, *target, device), evaluate(adapted, *target, device)
        result["shifts"][shift] = {
            "target_before": before, "target_after": after, "gain": after - before,
            "target_source_reestimated": evaluate(source_reestimated, *target, device),
            "target_batch_stats": evaluate_batch_statistics(model, *target, config.adapt_batch, device),
            "source_after": evaluate(adapted, *source, device),  # what the adapted net keeps of the source
        }
    result["seconds"] = time.perf_counter() - start
    return result


def summarize_runs(runs: list[dict], shifts: Iterable[str]) -> dict:
    """Mean ± std over seeds of every accuracy, the verdict per shift, and adaBN against every
    other arm paired by seed (``COMPARISONS``: mean difference, 95% interval, significance)."""
    from ..intervals import paired_difference

    summary = {"source_accuracy": report.summarize(r["source_accuracy"] for r in runs), "shifts": {}}
    for shift in shifts:
        rows = [r["shifts"][shift] for r in runs]
        gains = [row["gain"] for row in rows]
        summary["shifts"][shift] = {
            **{key: report.summarize(row[key] for row in rows) for key in (*ARMS, "gain", "source_after")},
            "verdict": gain_verdict(gains),
            "paired": {arm: paired_difference([row["target_after"] for row in rows], [row[arm] for row in rows])
                       for arm, _ in COMPARISONS},
        }
    return summary


def build_markdown(results: dict) -> str:
    """The Markdown report of ``run``'s results (pure)."""
    config, summary = results["config"], results["summary"]
    pct = {"scale": 100, "decimals": 1}
    text = [report.report_header("adaBN: re-estimating BN statistics on an unlabeled target domain", results)]
    text.append(
        f"A BN classifier ({config['classes']} shape classes, 32×32 px, width {config['width']}, "
        f"{config['iters']} Adam iterations of batch {config['batch_size']}) is trained on the source "
        f"domain and tested on {config['test_images']} images per domain. adaBN resets every BN layer's "
        f"running statistics by the pooled mean and variance, layer by layer, of "
        f"{config['adapt_images']} unlabeled target images (passed in batches of {config['adapt_batch']}), keeping "
        "every weight. Accuracies are in eval mode (but the batch-statistics control's), in percent, mean ± std over seeds "
        f"{', '.join(map(str, config['seeds']))} (std with n − 1).\n"
    )
    text.append(f"Source accuracy: **{report.fmt_mean_std(summary['source_accuracy'], **pct)} %**\n")
    text.append("Controls: *source re-est.* re-estimates the statistics the same way on as many unlabeled "
                "**source** images (exact pooled statistics, no target); *batch stats* normalises each target "
                f"test batch of {config['adapt_batch']} by its own statistics (train-mode BN, no adaptation pass).\n")
    rows = []
    for shift in config["shifts"]:
        s = summary["shifts"][shift]
        rows.append((shift, *(report.fmt_mean_std(s[arm], **pct) for arm in ARMS),
                     report.fmt_mean_std(s["source_after"], **pct), s["verdict"]))
    text.append(markdown_table(("shift", "target before", "source re-est.", "batch stats", "target after adaBN",
                                "source acc. of adapted net", "verdict"), rows))
    text.append(f"\nVerdict: *helps* = every seed gains and the mean gain exceeds {100 * results['clear_gain']:.0f} "
                "point; *hurts* = the reverse; otherwise *no clear effect*.\n")
    text.append(f"adaBN against each arm, paired by seed (the same net and test images), in points: mean ± 95% "
                f"interval over {len(results['runs'])} seeds; *yes*: the interval excludes 0 (paired t-test, 5%).\n")
    paired_rows = []
    for shift in config["shifts"]:
        paired = summary["shifts"][shift]["paired"]
        cells = []
        for arm, _ in COMPARISONS:
            d = {k: (100 * v if isinstance(v, float) else v) for k, v in paired[arm].items()}
            cells.append(f"{format_interval(d)} ({'yes' if d['significant'] else 'no'})")
        paired_rows.append((shift, *cells))
    text.append(markdown_table(("shift", *(label for _, label in COMPARISONS)), paired_rows) + "\n")
    text.append("## Per seed\n")
    seed_rows = []
    for run in results["runs"]:
        for shift in config["shifts"]:
            s = run["shifts"][shift]
            seed_rows.append((run["seed"], shift, f"{100 * run['source_accuracy']:.1f}",
                              *(f"{100 * s[arm]:.1f}" for arm in ARMS), f"{100 * s['gain']:+.1f}"))
    text.append(markdown_table(("seed", "shift", "source", "target before", "source re-est.", "batch stats",
                                "target after", "gain"), seed_rows))
    return "\n".join(text) + "\n"


def run(config: AdaBNConfig, *, command: str, progress: bool = False) -> dict:
    """Every seed and shift; returns the results dict that ``build_markdown`` renders."""
    from ..devices import resolve_device

    config = config.validate()
    device = resolve_device(config.device)
    start = time.perf_counter()
    runs = [run_seed(config, seed, device, progress) for seed in
            tqdm(config.seeds, desc="adabn seeds", disable=not progress)]
    return {
        "experiment": "adabn", "command": command, "config": asdict(config),
        "environment": report.environment(device), "seconds": time.perf_counter() - start,
        "clear_gain": CLEAR_GAIN, "runs": runs, "summary": summarize_runs(runs, config.shifts),
    }
