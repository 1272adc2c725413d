"""Batch dependence of normalisation statistics: instance vs batch statistics, BN train vs eval.

(a) AdaIN with instance statistics (the ``adain`` op: each image's own relu4_1 mean/std) against
    "AdaBN" — the same formula with the content mean/std pooled over the whole batch.
(b) The feed-forward network with every norm of the registry, run in train mode and in eval mode.

For each, ``metrics.batch_dependence`` measures how much one image's output changes when the
other images of its batch change.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..adain import ADAIN_LAYER, Decoder, adain, load_decoder, mean_std
from ..encoder import Encoder
from ..errors import UsageError
from ..markdown import markdown_table
from ..norms import NORMS
from ..weights import DEFAULT_ENCODER
from . import report
from .adabn import reestimate_bn
from .data import DEFAULT_CONTENT_DIR, DEFAULT_STYLE, ContentImages, check_assets, load_style
from .metrics import batch_dependence
from .transform_net import TransformerConfig, TransformerNet, load_transformer

INDEPENDENT_TOLERANCE = 1e-5  # max abs change allowed for "independent of the batch"
DEPENDENT_MINIMUM = 1e-3  # mean relative L2 change that counts as clearly batch-dependent
CALIBRATION_BATCHES = 8  # batches used to set a random BN network's running statistics


def batch_mean_std(features: Tensor) -> tuple[Tensor, Tensor]:
    """Channel mean and std pooled over the batch and all positions (as BN in training), with
    ``mean_std``'s convention (unbiased variance + eps). Returns two (1, C, 1, 1) tensors."""
    n, c = features.shape[:2]
    pooled = features.transpose(0, 1).reshape(1, c, -1)  # (1, C, N*H*W)
    return mean_std(pooled)


def adabn_op(content: Tensor, style_mean: Tensor, style_std: Tensor) -> Tensor:
    """AdaIN's formula with batch statistics of the content: σ(y)·(x − μ_B)/σ_B + μ(y)."""
    mean, std = batch_mean_std(content)
    return (content - mean) / std * style_std + style_mean


STATISTICS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {"instance": adain, "batch": adabn_op}


@dataclass(frozen=True)
class StatsConfig:
    """Settings of ``styletransfer ablate stats`` (the defaults are the full setting)."""

    size: int = 256
    batch_sizes: tuple[int, ...] = (2, 4, 8)
    compositions: int = 5
    targets: int = 8
    pool: int = 24
    width: int = 32
    residual_blocks: int = 5
    seed: int = 0
    content: str = str(DEFAULT_CONTENT_DIR)
    style: str = str(DEFAULT_STYLE)
    decoder: str | None = None
    transformer: str | None = None
    weights: str = DEFAULT_ENCODER
    device: str = "auto"

    def validate(self) -> "StatsConfig":
        if not self.batch_sizes or min(self.batch_sizes) < 2:
            raise UsageError("--batch-sizes: every batch size must be ≥ 2 (one image has no other batch members)")
        if self.pool <= max(self.batch_sizes):
            raise UsageError(f"--pool {self.pool} must be larger than the largest batch size {max(self.batch_sizes)}")
        if self.compositions < 2 or self.targets < 1:
            raise UsageError("--compositions must be ≥ 2 and --targets ≥ 1")
        check_assets(self.content, self.style)
        return self


QUICK = StatsConfig(size=64, batch_sizes=(2, 4, 8), compositions=4, targets=4, pool=12, width=16, residual_blocks=3)


def expectation(statistics: str, training: bool | None = None) -> str:
    """'independent' or 'dependent': what theory says about a method's batch dependence."""
    dependent = statistics == "batch" and training is not False
    return "dependent" if dependent else "independent"


def meets_expectation(expected: str, measured: dict) -> bool:
    if expected == "independent":
        return measured["max_abs"] <= INDEPENDENT_TOLERANCE
    return measured["mean_rel_l2"] > DEPENDENT_MINIMUM


def _transformers(config: StatsConfig, calibration: Tensor, device: torch.device) -> tuple[dict, str]:
    """One network per norm. With ``--transformer`` only that file's network; otherwise random
    networks of the same seed, BN's running statistics set from calibration images (adaBN's
    re-estimation), so eval mode is not trivially the identity normalisation."""
    if config.transformer:
        net, _ = load_transformer(config.transformer)
        return {net.config.norm: net.to(device)}, f"loaded from {config.transformer}"
    nets = {}
    for norm in NORMS.names():
        torch.manual_seed(config.seed)
        net = TransformerNet(TransformerConfig(norm=norm, width=config.width,
                                               residual_blocks=config.residual_blocks)).to(device)
        if NORMS.get(norm).batch_statistics:
            reestimate_bn(net, calibration.split(max(2, calibration.shape[0] // CALIBRATION_BATCHES)))
        nets[norm] = net.eval()
    return nets, (f"random weights (seed {config.seed}); BN running statistics estimated on "
                  f"{calibration.shape[0]} content images")


def _in_mode(net: torch.nn.Module, training: bool) -> Callable[[Tensor], Tensor]:
    """The network as a function in train or eval mode; train-mode passes run on a copy, so the
    original's running statistics are never touched."""
    model = copy.deepcopy(net).train(training)
    return lambda batch: model(batch)


def run(config: StatsConfig, encoder: Encoder, *, command: str, progress: bool = False) -> dict:
    """Measure every method's batch dependence at every batch size."""
    from ..devices import resolve_device
    from ..provenance import encoder_info

    config = config.validate()
    device = resolve_device(config.device)
    start = time.perf_counter()
    encoder = encoder.to(device)
    data = ContentImages.from_folder(config.content, holdout=0, size=config.size)  # no training: use all
    generator = torch.Generator().manual_seed(config.seed)
    pool = data.batch(config.pool, config.size, generator, photos=data.train, photo_fraction=0.5).to(device)
    calibration = data.batch(config.pool, config.size, generator, photos=data.train, photo_fraction=0.5).to(device)
    style = load_style(config.style, config.size).to(device).unsqueeze(0)

    if config.decoder:
        decoder, _ = load_decoder(config.decoder)
        decoder_source = f"loaded from {config.decoder}"
    else:
        torch.manual_seed(config.seed)
        decoder, decoder_source = Decoder(), f"random weights (seed {config.seed})"
    decoder = decoder.to(device).eval()
    with torch.no_grad():
        style_mean, style_std = mean_std(encoder(style, [ADAIN_LAYER])[ADAIN_LAYER])

    def adain_fn(statistics: str, decode: bool) -> Callable[[Tensor], Tensor]:
        op = STATISTICS[statistics]

        def fn(batch: Tensor) -> Tensor:
            features = op(encoder(batch, [ADAIN_LAYER])[ADAIN_LAYER], style_mean, style_std)  # (N, 512, h, w)
            return decoder(features) if decode else features

        return fn

    nets, net_source = _transformers(config, calibration, device)
    methods = [(family, stats, None, adain_fn(stats, family == "adain"))
               for family in ("adain-features", "adain") for stats in STATISTICS]
    for norm, net in nets.items():
        for training in (False, True):
            methods.append(("transformer", norm, training, _in_mode(net, training)))
    rows = []
    total = len(methods) * len(config.batch_sizes)
    bar = tqdm(total=total, desc="batch dependence", disable=not progress)
    for family, name, training, fn in methods:
        statistics = name if family.startswith("adain") else (
            "batch" if NORMS.get(name).batch_statistics else "instance")
        expected = expectation(statistics, training)
        for batch_size in config.batch_sizes:
            measured = batch_dependence(fn, pool, batch_size=batch_size, compositions=config.compositions,
                                        targets=config.targets,
                                        generator=torch.Generator().manual_seed(config.seed + batch_size)).to_dict()
            rows.append({"family": family, "method": name, "training": training, "batch_size": batch_size,
                         "expected": expected, "as_expected": meets_expectation(expected, measured), **measured})
            bar.update()
    bar.close()
    return {
        "experiment": "stats", "command": command, "config": asdict(config), "weights": encoder_info(encoder),
        "environment": report.environment(device), "seconds": time.perf_counter() - start,
        "decoder": decoder_source, "transformer": net_source,
        "thresholds": {"independent_max_abs": INDEPENDENT_TOLERANCE, "dependent_mean_rel_l2": DEPENDENT_MINIMUM},
        "rows": rows, "all_as_expected": all(r["as_expected"] for r in rows),
    }


def _label(row: dict) -> str:
    if row["family"].startswith("adain"):
        where = "relu4_1 features" if row["family"] == "adain-features" else "decoded image"
        return f"AdaIN, {row['method']} statistics{' (AdaBN)' if row['method'] == 'batch' else ''}: {where}"
    return f"TransformerNet norm={row['method']}, {'train' if row['training'] else 'eval'} mode"


def build_markdown(results: dict) -> str:
    """The Markdown report of ``run``'s results (pure)."""
    config, thresholds = results["config"], results["thresholds"]
    text = [report.report_header("Batch dependence: instance vs batch statistics", results)]
    text.append(
        f"For each of {config['targets']} target images, {config['compositions']} batches are built that contain "
        f"it at a random position together with other images drawn from a pool of {config['pool']} "
        f"({config['size']}×{config['size']} px); the target's output in each batch is compared with its output in "
        "the first. `max abs` is the largest pixel change, `rel L2` is ‖Δ‖/‖output‖ (mean and max over targets "
        "and compositions).\n"
    )
    text.append(f"- AdaIN decoder: {results['decoder']}; style `{config['style'].rsplit('/', 1)[-1]}`.\n"
                f"- TransformerNet: {results['transformer']}.\n"
                f"- Expected *independent*: max abs ≤ {thresholds['independent_max_abs']:g}; expected *dependent*: "
                f"mean rel L2 > {thresholds['dependent_mean_rel_l2']:g}.\n")
    rows = [(_label(r), r["batch_size"], report.fmt(r["max_abs"]), report.fmt(r["mean_rel_l2"]), report.fmt(r["max_rel_l2"]),
             r["expected"], "yes" if r["as_expected"] else "**NO**") for r in results["rows"]]
    text.append(markdown_table(("method", "batch", "max abs", "mean rel L2", "max rel L2", "expected",
                                  "as expected"), rows))
    verdict = "Every row is as expected." if results["all_as_expected"] else \
        "**Some rows are not as expected** (marked NO)."
    text.append(f"\n{verdict}\n")
    return "\n".join(text) + "\n"
