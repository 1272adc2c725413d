"""Normalization ablation: one feed-forward stylisation network, trained once per norm.

Every arm gets the same initial seed, the same batches in the same order and the same number
of iterations; only the norm name given to ``TransformerNet`` and its learning rate differ. Each
norm's learning rate comes from a small sweep (``lrs``): one run per rate on a seed no arm uses,
scored on a validation draw distinct from the held-out test images, so no norm is judged at a
rate that suits another. Held-out losses are measured in eval mode (BN: running statistics;
every other norm: per-image statistics, as in training), in train mode (BN: the held-out batch's
own statistics), and for BN once more with its statistics re-estimated (pooled, as adaBN does)
on unlabeled images of the held-out kind: a control for BN's running averages.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..encoder import Encoder
from ..errors import TrainingError, UsageError
from ..intervals import format_interval
from ..markdown import markdown_table
from ..norms import NORMS
from ..weights import DEFAULT_ENCODER
from . import report
from .data import DEFAULT_CONTENT_DIR, DEFAULT_STYLE, ContentImages, check_assets, load_style
from .perceptual import PerceptualLoss
from .plot import image_grid, line_plot, save_png
from .transform_net import TransformerConfig, TransformerNet, save_transformer

SAMPLE_IMAGES = 4  # held-out images shown in samples.png
SPEED_REPEATS = 3
TRAIN_CURVE_POINTS = 50  # the training-loss plot averages over windows to about this many points
CURVES_PNG, TRAIN_CURVES_PNG, SAMPLES_PNG = "curves.png", "train_curves.png", "samples.png"


@dataclass(frozen=True)
class NormConfig:
    """Settings of ``styletransfer ablate norm`` (the defaults are the full, GPU setting)."""

    norms: tuple[str, ...] = tuple(NORMS.names())
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    iters: int = 4000
    size: int = 256
    batch_size: int = 4
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)  # one value: no sweep
    width: int = 32
    residual_blocks: int = 5
    content_layer: str | None = None  # None: the encoder's perceptual_content_layer (VGG19: relu2_2)
    style_layers: tuple[str, ...] | None = None  # None: the encoder's perceptual_style_layers
    content_weight: float = 1.0
    style_weight: float = 5.0
    heldout: int = 16
    holdout: int = 1  # photo files held out (the last ones by name)
    photo_fraction: float = 0.5
    eval_every: int = 200
    content: str = str(DEFAULT_CONTENT_DIR)
    style: str = str(DEFAULT_STYLE)
    weights: str = DEFAULT_ENCODER
    device: str = "auto"
    save_nets: bool = False

    def validate(self) -> "NormConfig":
        if not self.norms:
            raise UsageError("--norms: give at least one normalization")
        for name in self.norms:
            NORMS.get(name)
        if not self.seeds:
            raise UsageError("--seeds: give at least one seed")
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise UsageError(f"--lr: give one or more learning rates > 0, got {self.lrs}")
        if self.batch_size < 2 and any(NORMS.get(name).batch_statistics for name in self.norms):
            raise UsageError("--batch-size must be ≥ 2 for the batch-norm arm (one image has no batch statistics)")
        if self.heldout < 1 or self.eval_every < 1 or self.iters < 1:
            raise UsageError("--heldout, --eval-every and --iters must be ≥ 1")
        if not 0 <= self.photo_fraction <= 1:
            raise UsageError(f"--photo-fraction must be in [0, 1], got {self.photo_fraction}")
        from ..encoder import check_layers
        from ..optimize import ENCODER_LAYERS

        check_layers([*([self.content_layer] if self.content_layer else []), *(self.style_layers or ())], ENCODER_LAYERS)
        check_assets(self.content, self.style)
        return self


SWEEP_SEED = 10_000  # the learning-rate sweep's seed: no arm's
VALIDATION_SEED = 1  # the sweep's scores and BN's re-estimation use this draw; the test set is draw 0
QUICK = NormConfig(iters=120, size=64, batch_size=4, width=16, residual_blocks=3,
                   heldout=8, eval_every=12)


@dataclass
class Evaluation:
    """Mean held-out losses of one network state."""

    content: float
    style: float
    total: float

    @classmethod
    def of(cls, net: TransformerNet, loss: PerceptualLoss, images: Tensor, config: NormConfig,
           *, training: bool = False) -> "Evaluation":
        """Held-out losses in eval mode, or as in training (``training``: BN uses each chunk's
        batch statistics; the per-image norms compute the same either way) — without updating
        any running statistics of ``net``."""
        from .adabn import with_batch_statistics

        probe = with_batch_statistics(net) if training else net.eval()
        content, style = [], []
        with torch.no_grad():
            for start in range(0, images.shape[0], config.batch_size):
                chunk = images[start : start + config.batch_size]
                c, s = loss(probe(chunk), chunk)
                content.append(c)
                style.append(s)
        c, s = float(torch.cat(content).mean()), float(torch.cat(style).mean())
        return cls(c, s, config.content_weight * c + config.style_weight * s)


@dataclass
class ArmResult:
    norm: str
    seed: int
    curve: list[dict] = field(default_factory=list)  # held-out losses (eval mode) every eval_every
    train_curve: list[float] = field(default_factory=list)  # training total loss per iteration
    lr: float = 0.0
    final: dict = field(default_factory=dict)
    final_train_mode: dict = field(default_factory=dict)
    final_reestimated: dict | None = None  # BN only: statistics re-estimated on the validation draw
    output_std: float = 0.0  # spatial std of the held-out outputs, mean over images and channels; ~0: constant
    train_images_per_s: float = 0.0
    inference_images_per_s: float = 0.0
    parameters: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _inference_speed(net: TransformerNet, images: Tensor, device: torch.device) -> float:
    """Images per second of the eval-mode network alone (best of a few repeats)."""
    net.eval()
    best = float("inf")
    with torch.no_grad():
        net(images)  # warm-up
        for _ in range(SPEED_REPEATS):
            _sync(device)
            start = time.perf_counter()
            net(images)
            _sync(device)
            best = min(best, time.perf_counter() - start)
    return images.shape[0] / best


def train_arm(norm: str, seed: int, config: NormConfig, data: ContentImages, loss: PerceptualLoss,
              heldout: Tensor, device: torch.device, progress: bool = False, *, lr: float,
              unlabeled: Tensor | None = None) -> tuple[ArmResult, TransformerNet]:
    """Train one network; every arm of a seed sees the same initial RNG state and batches. With
    ``unlabeled`` images, a batch-statistics norm is also evaluated with its statistics
    re-estimated on them."""
    torch.manual_seed(seed)
    net = TransformerNet(TransformerConfig(norm=norm, width=config.width,
                                           residual_blocks=config.residual_blocks)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    result = ArmResult(norm=norm, seed=seed, lr=lr, parameters=sum(p.numel() for p in net.parameters()))
    result.curve.append({"iteration": 0, **asdict(Evaluation.of(net, loss, heldout, config))})
    train_seconds = 0.0
    bar = tqdm(range(1, config.iters + 1), desc=f"{norm:>8} seed {seed}", disable=not progress)
    for iteration in bar:
        batch = data.train_batch(iteration, config.batch_size, config.size, seed=seed,
                                 photo_fraction=config.photo_fraction).to(device)
        _sync(device)
        start = time.perf_counter()
        net.train()
        content, style = loss(net(batch), batch)
        total = (config.content_weight * content + config.style_weight * style).mean()
        if not torch.isfinite(total):
            raise TrainingError(f"the {norm} arm's loss became {float(total)} at iteration {iteration}: "
                                "lower --lr or --style-weight")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        _sync(device)
        train_seconds += time.perf_counter() - start
        result.train_curve.append(float(total.detach()))
        if iteration % config.eval_every == 0 or iteration == config.iters:
            evaluation = Evaluation.of(net, loss, heldout, config)
            result.curve.append({"iteration": iteration, **asdict(evaluation)})
            bar.set_postfix(train=f"{result.train_curve[-1]:.3f}", heldout=f"{evaluation.total:.3f}", refresh=False)
    result.final = result.curve[-1]
    result.final_train_mode = asdict(Evaluation.of(net, loss, heldout, config, training=True))
    if unlabeled is not None and NORMS.get(norm).batch_statistics:
        from .adabn import reestimate_bn

        reestimated = copy.deepcopy(net)
        reestimate_bn(reestimated, unlabeled.split(config.batch_size))
        result.final_reestimated = asdict(Evaluation.of(reestimated, loss, heldout, config))
    result.train_images_per_s = config.iters * config.batch_size / max(train_seconds, 1e-9)
    result.inference_images_per_s = _inference_speed(net, heldout[: config.batch_size], device)
    with torch.no_grad():
        result.output_std = float(net.eval()(heldout).flatten(2).std(dim=2).mean())  # over pixels, per channel
    return result, net.eval()


def sweep_learning_rate(norm: str, config: NormConfig, data: ContentImages, loss: PerceptualLoss,
                        validation: Tensor, device: torch.device, progress: bool = False) -> dict:
    """One run per rate in ``config.lrs`` on ``SWEEP_SEED``, scored by the final total loss on
    the validation draw; a rate whose loss turned NaN scores infinity. Returns the scores and the
    chosen rate (the lowest score; the first rate of a tie); one rate is chosen without a run."""
    if len(config.lrs) == 1:
        return {"lr": config.lrs[0], "scores": {}}
    scores = {}
    for lr in config.lrs:
        try:
            arm, _ = train_arm(norm, SWEEP_SEED, config, data, loss, validation, device, progress, lr=lr)
            scores[lr] = arm.final["total"]
        except TrainingError:
            scores[lr] = math.inf
    return {"lr": min(config.lrs, key=lambda lr: scores[lr]), "scores": {str(lr): v for lr, v in scores.items()}}


def curve_average(curve: list[dict], key: str = "total") -> float:
    """Mean of a held-out curve over its evaluation points after iteration 0 (area under it)."""
    points = [point[key] for point in curve if point["iteration"] > 0]
    return sum(points) / len(points)


def summarize_arms(arms: list[dict], norms: tuple[str, ...]) -> dict:
    """Per norm, mean ± std over seeds of every reported metric."""
    summary = {}
    for norm in norms:
        rows = [a for a in arms if a["norm"] == norm]
        summary[norm] = {
            "final_content": report.summarize(a["final"]["content"] for a in rows),
            "final_style": report.summarize(a["final"]["style"] for a in rows),
            "final_total": report.summarize(a["final"]["total"] for a in rows),
            "curve_avg_content": report.summarize(curve_average(a["curve"], "content") for a in rows),
            "curve_avg_style": report.summarize(curve_average(a["curve"], "style") for a in rows),
            "curve_avg_total": report.summarize(curve_average(a["curve"], "total") for a in rows),
            "final_total_train_mode": report.summarize(a["final_train_mode"]["total"] for a in rows),
            "final_total_reestimated": (report.summarize(a["final_reestimated"]["total"] for a in rows)
                                        if rows[0].get("final_reestimated") else None),
            "output_std": report.summarize(a["output_std"] for a in rows),
            "train_images_per_s": report.summarize(a["train_images_per_s"] for a in rows),
            "inference_images_per_s": report.summarize(a["inference_images_per_s"] for a in rows),
            "parameters": rows[0]["parameters"],
        }
    return summary


PAIRED_REFERENCE = "instance"  # every other norm is compared with it, paired by seed


REESTIMATED = " (re-estimated)"  # the row of a batch-statistics norm evaluated after re-estimation


def paired_comparisons(arms: list[dict], norms: tuple[str, ...], reference: str = PAIRED_REFERENCE,
                       key: str = "total") -> dict[str, dict]:
    """Per norm, the final held-out ``key`` minus the reference norm's, paired by seed (each seed's
    arms share their initial weights and batches): mean, 95% interval and whether it excludes 0;
    a batch-statistics norm also as "<norm> (re-estimated)". Empty without the reference arm; one
    seed gives no interval."""
    from ..intervals import paired_difference

    if reference not in norms:
        return {}
    final = {(a["norm"], a["seed"]): a["final"][key] for a in arms}
    final.update({(a["norm"] + REESTIMATED, a["seed"]): a["final_reestimated"][key]
                  for a in arms if a.get("final_reestimated")})
    seeds = sorted({a["seed"] for a in arms})
    rows = [name for norm in norms if norm != reference
            for name in (norm, norm + REESTIMATED) if (name, seeds[0]) in final]
    return {name: paired_difference([final[(name, s)] for s in seeds], [final[(reference, s)] for s in seeds])
            for name in rows}


def mean_curves(arms: list[dict], norms: tuple[str, ...], key: str = "total") -> dict[str, list[tuple[float, float]]]:
    """Held-out curve per norm, averaged over seeds (every seed has the same evaluation points)."""
    curves = {}
    for norm in norms:
        rows = [a["curve"] for a in arms if a["norm"] == norm]
        curves[norm] = [(points[0]["iteration"], sum(p[key] for p in points) / len(points)) for points in zip(*rows)]
    return curves


def mean_train_curves(arms: list[dict], norms: tuple[str, ...], window: int) -> dict[str, list[tuple[float, float]]]:
    """Training loss per norm, averaged over seeds and over windows of ``window`` iterations."""
    curves = {}
    for norm in norms:
        rows = [a["train_curve"] for a in arms if a["norm"] == norm]
        per_iteration = [sum(values) / len(values) for values in zip(*rows)]
        curves[norm] = [(start + window, sum(chunk) / len(chunk)) for start in range(0, len(per_iteration), window)
                        for chunk in [per_iteration[start : start + window]]]
    return curves


def build_markdown(results: dict) -> str:
    """The Markdown report of ``run``'s results (pure)."""
    config, summary = results["config"], results["summary"]
    text = [report.report_header("Normalization ablation of a feed-forward stylisation network", results)]
    text.append(
        f"Network: `TransformerNet` (width {config['width']}, {config['residual_blocks']} residual blocks), "
        f"trained {config['iters']} iterations of Adam on batches of {config['batch_size']} "
        f"images of {config['size']}×{config['size']} px; perceptual loss = {config['content_weight']} · content "
        f"({config['content_layer']}) + {config['style_weight']} · Gram style ({', '.join(config['style_layers'])}), "
        f"both relative (see docs/ABLATIONS.md). Style: `{Path(config['style']).name}`. Training photos: "
        f"{', '.join(results['data']['train_photos'])} (random crops) and generated scenes; held-out: "
        f"{config['heldout']} images from {', '.join(results['data']['heldout_photos'])} and a separate generated "
        f"stream. Seeds: {', '.join(map(str, config['seeds']))}; every arm of a seed starts from the same RNG state "
        "and sees the same batches.\n"
    )
    sweep = results.get("sweep", {})
    if len(config["lrs"]) > 1:
        text.append(f"Learning rate per norm, from a sweep over {', '.join(f'{lr:g}' for lr in config['lrs'])}: one "
                    f"run per rate on seed {results.get('sweep_seed', SWEEP_SEED)} (no arm's), scored by the final "
                    "total loss on a validation draw of held-out-kind images distinct from the test images "
                    "(∞: the loss turned NaN).\n")
        text.append(markdown_table(("norm", *(f"lr {lr:g}" for lr in config["lrs"]), "chosen"),
                                   [(n, *(report.fmt(sweep[n]["scores"][str(lr)]) for lr in config["lrs"]),
                                     f"{sweep[n]['lr']:g}") for n in config["norms"]]) + "\n")
    text.append("Held-out losses are in **eval mode** (BN: running statistics; instance/layer/group/none: "
                "per-image statistics, the same computation as in training). Mean ± std over seeds (n − 1).\n")
    rows = []
    for norm in config["norms"]:
        s = summary[norm]
        reestimated = s.get("final_total_reestimated")
        rows.append((norm, f"{sweep[norm]['lr']:g}" if norm in sweep else "", report.fmt_mean_std(s["final_total"]),
                     report.fmt_mean_std(s["final_content"]), report.fmt_mean_std(s["final_style"]),
                     report.fmt_mean_std(s["curve_avg_total"]), report.fmt_mean_std(s["final_total_train_mode"]),
                     report.fmt_mean_std(reestimated) if reestimated else "—", report.fmt_mean_std(s["output_std"], 3),
                     report.fmt_mean_std(s["train_images_per_s"], 3), report.fmt_mean_std(s["inference_images_per_s"], 3),
                     s["parameters"]))
    text.append(markdown_table(
        ("norm", "lr", "final total", "final content", "final style", "curve-avg total", "final total, train mode",
         "final total, BN re-estimated", "output std", "train img/s", "inference img/s", "parameters"), rows))
    best = min(config["norms"], key=lambda n: summary[n]["final_total"]["mean"])
    text.append(f"\nLowest final held-out total: **{best}**. `curve-avg` is the mean over the evaluation points "
                f"(every {config['eval_every']} iterations), a measure of how fast the loss fell. "
                "`train mode` is the same held-out evaluation with the network in training mode "
                "(BN: statistics of each held-out batch). `BN re-estimated`: the trained BN net with its running "
                "statistics replaced by pooled statistics of unlabeled images of the held-out kind (the validation "
                "draw), as adaBN does. `output std` is the spatial standard deviation of the "
                "held-out outputs (mean over images and channels): near 0 means the network outputs a constant image.\n")
    paired = results.get("paired", {}).get("total")
    if paired:
        reference = results["paired"]["reference"]
        text.append(f"Paired by seed against `{reference}` (final held-out total of the norm minus `{reference}`'s, "
                    "same seed, same initial weights and batches): mean ± 95% interval; *significant*: the interval "
                    "excludes 0 (paired t-test, 5%). One seed gives no interval.\n")
        text.append(markdown_table(("norm", f"total − total({reference})", "significant"),
                                   [(n, format_interval(d), "yes" if d["significant"] else "no")
                                    for n, d in paired.items()]) + "\n")
    text.append(f"![held-out loss]({CURVES_PNG})\n\n![training loss]({TRAIN_CURVES_PNG})\n\n"
                f"![held-out samples]({SAMPLES_PNG})\n")
    return "\n".join(text) + "\n"


def run(config: NormConfig, encoder: Encoder, *, command: str, output_dir: str | Path,
        progress: bool = False) -> dict:
    """Train every arm for every seed; write the plots (and nets) into ``output_dir``; return the
    results dict that ``build_markdown`` renders."""
    from ..devices import resolve_device
    from ..provenance import encoder_info

    config = config.validate()
    device = resolve_device(config.device)
    output_dir = Path(output_dir)
    encoder = encoder.to(device)
    from ..encoder import check_layers

    config = replace(config, content_layer=config.content_layer or encoder.perceptual_content_layer,
                     style_layers=tuple(config.style_layers or encoder.perceptual_style_layers))
    check_layers((config.content_layer, *config.style_layers), encoder.layer_names)
    start = time.perf_counter()
    data = ContentImages.from_folder(config.content, holdout=config.holdout, size=config.size)
    style = load_style(config.style, config.size).to(device)
    heldout = data.heldout_set(config.heldout, config.size).to(device)
    validation = data.heldout_set(config.heldout, config.size, seed=VALIDATION_SEED).to(device)
    loss = PerceptualLoss(encoder, style, content_layer=config.content_layer, style_layers=config.style_layers)
    sweep = {norm: sweep_learning_rate(norm, config, data, loss, validation, device, progress) for norm in config.norms}
    arms, samples = [], {}
    for seed in config.seeds:
        for norm in config.norms:
            arm, net = train_arm(norm, seed, config, data, loss, heldout, device, progress, lr=sweep[norm]["lr"],
                                 unlabeled=validation)
            arms.append(arm.to_dict())
            if seed == config.seeds[0]:
                with torch.no_grad():
                    samples[norm] = net(heldout[:SAMPLE_IMAGES]).cpu()
            if config.save_nets:
                save_transformer(net, output_dir / "nets" / f"{norm}-seed{seed}.safetensors",
                                 {"experiment": "ablate norm", "seed": seed, "encoder": encoder_info(encoder)})
    results = {
        "experiment": "norm", "command": command, "config": asdict(config), "weights": encoder_info(encoder),
        "environment": report.environment(device), "seconds": time.perf_counter() - start,
        "data": {"train_photos": data.train_names, "heldout_photos": data.heldout_names},
        "sweep": sweep, "sweep_seed": SWEEP_SEED, "arms": arms, "summary": summarize_arms(arms, config.norms),
        "paired": {"reference": PAIRED_REFERENCE, "total": paired_comparisons(arms, config.norms)},
    }
    save_png(line_plot(mean_curves(arms, config.norms), title="held-out loss (eval mode), mean over seeds",
                       xlabel="iteration", ylabel="content + style loss", log_y=True), output_dir / CURVES_PNG)
    window = max(1, config.iters // TRAIN_CURVE_POINTS)
    save_png(line_plot(mean_train_curves(arms, config.norms, window),
                       title=f"training loss, mean over seeds and {window}-iteration windows",
                       xlabel="iteration", ylabel="content + style loss", log_y=True), output_dir / TRAIN_CURVES_PNG)
    columns = [heldout[:SAMPLE_IMAGES].cpu(), *(samples[n] for n in config.norms)]
    save_png(image_grid([list(row) for row in zip(*columns)], ["held-out", *config.norms]), output_dir / SAMPLES_PNG)
    return results
