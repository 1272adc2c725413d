"""``styletransfer ablate``: normalization ablations and the adaBN experiment (docs/ABLATIONS.md).

Every subcommand has a full default setting (meant for a GPU) and ``--quick`` (a few minutes
on two CPU cores); flags given explicitly override either. Each writes ``results.json`` and
``results.md`` (plus plots) into ``-o DIR``.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Callable

import click

from ..parsing import parse_float_list, parse_int_list
from ..weights import DEFAULT_ENCODER
from .options import apply
from .params import NAMES, ListParam

SEEDS = ListParam(parse_int_list, "seeds", minimum=0)
LEARNING_RATES = ListParam(parse_float_list, "learning rates", minimum=0.0)
BATCH_SIZES = ListParam(parse_int_list, "sizes", minimum=2)
WEIGHTS_HELP = ("Encoder weights: vgg19 (the original VGG19, installed; the default), imagenet (downloaded), "
                "magenta, a .pth/.safetensors file, a downloaded manifest name, or "
                "random[:SEED] (offline runs; see the report's note on what random weights limit).")


def _command_line(ctx: click.Context) -> str:
    """The invocation as typed (options given on the command line, in declaration order)."""
    names, context = [], ctx
    while context.parent is not None:
        names.append(context.info_name)
        context = context.parent
    words = ["styletransfer", *reversed(names)]
    for param in ctx.command.params:
        if not isinstance(param, click.Option):
            continue
        if ctx.get_parameter_source(param.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        flag = max(param.opts, key=len)
        if param.is_flag:
            if param.secondary_opts and not value:
                words.append(max(param.secondary_opts, key=len))
            elif value:
                words.append(flag)
            continue
        values = value if param.multiple else [value]
        for item in values:
            text = ",".join(str(v) for v in item) if isinstance(item, (tuple, list)) else str(item)
            words += [flag, text]
    return shlex.join(words)


def common_options(function: Callable) -> Callable:
    return apply(
        click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False),
                     help="Folder for results.json, results.md and plots (created)."),
        click.option("--quick", is_flag=True, help="The small CPU setting (a few minutes on 2 cores)."),
        click.option("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads for torch (default: torch's choice)."),
        click.option("--overwrite", is_flag=True, help="Replace an earlier run's results in -o DIR."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="tqdm bars on stderr."),
    )(function)


def _config(preset, full, quick: bool, **overrides):
    """The preset (``--quick``) or full config with every explicitly given flag applied."""
    return replace(preset if quick else full, **{k: v for k, v in overrides.items() if v is not None})


def _run(ctx: click.Context, output_dir: str, overwrite: bool, threads: int | None, work: Callable[[str], dict],
         build_markdown: Callable[[dict], str]) -> dict:
    """Check the output folder, run the experiment with the given thread count, write the reports."""
    import torch

    from ..ablate.report import check_output_dir, write_report

    folder = check_output_dir(output_dir, overwrite=overwrite)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        results = work(_command_line(ctx))
    finally:
        torch.set_num_threads(previous)
    json_path, md_path = write_report(folder, results, build_markdown(results))
    click.echo(f"wrote {md_path} and {json_path.name} in {results['seconds']:.1f}s")
    return results


def _encoder(weights: str, device: str):
    from ..devices import resolve_device
    from ..weights import load_encoder

    return load_encoder(weights, device=resolve_device(device))


@click.group("ablate")
def ablate_group() -> None:
    """Normalization ablations and the adaBN experiment (see docs/ABLATIONS.md)."""


@ablate_group.command("norm")
@common_options
@click.option("--weights", default=DEFAULT_ENCODER, show_default=True, help=WEIGHTS_HELP)
@click.option("--norms", type=NAMES, default=None, help="Norms to compare (default all: none,batch,instance,layer,group).")
@click.option("--seeds", type=SEEDS, default=None, help="Seeds, e.g. 0,1,2 (0,1,2,3,4).")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Training iterations per arm (full 4000, quick 120).")
@click.option("--size", type=click.IntRange(min=16), default=None, help="Training/eval image side (full 256, quick 64).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size (4).")
@click.option("--lr", "lrs", type=LEARNING_RATES, default=None,
              help="Adam learning rates: each norm's is chosen by a sweep over them; one value, no sweep (3e-4,1e-3,3e-3).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Channels of the first conv (full 32, quick 16).")
@click.option("--blocks", "residual_blocks", type=click.IntRange(min=0), default=None, help="Residual blocks (full 5, quick 3).")
@click.option("--content-layer", default=None, help="Content layer (relu2_2).")
@click.option("--style-layers", type=NAMES, default=None, help="Gram style layers (relu1_1,relu2_1,relu3_1,relu4_1).")
@click.option("--content-weight", type=click.FloatRange(min=0), default=None, help="Content weight (1).")
@click.option("--style-weight", type=click.FloatRange(min=0), default=None, help="Style weight (5).")
@click.option("--heldout", type=click.IntRange(min=1), default=None, help="Held-out images (full 16, quick 8).")
@click.option("--holdout", type=click.IntRange(min=1), default=None, help="Photo files held out, the last by name (1).")
@click.option("--eval-every", type=click.IntRange(min=1), default=None, help="Held-out evaluation interval (full 200, quick 12).")
@click.option("--content", type=click.Path(), default=None,
              help="Folder of content photos (the sample photos installed with the package).")
@click.option("--style", type=click.Path(), default=None, help="Style image (the installed sample mosaic.jpg).")
@click.option("--save-nets", is_flag=True, default=None, help="Also write every trained network to DIR/nets/.")
@click.pass_context
def norm_command(ctx, output_dir, quick, device, threads, overwrite, progress, weights, **overrides) -> None:
    """Train one feed-forward stylisation network per normalization and compare held-out losses."""
    from ..ablate import norm as norm_ablation

    config = _config(norm_ablation.QUICK, norm_ablation.NormConfig(), quick, device=device, weights=weights,
                     **overrides).validate()

    def work(command: str) -> dict:
        encoder = _encoder(config.weights, config.device)
        return norm_ablation.run(config, encoder, command=command, output_dir=output_dir, progress=progress)

    results = _run(ctx, output_dir, overwrite, threads, work, norm_ablation.build_markdown)
    for norm in config.norms:
        s = results["summary"][norm]
        click.echo(f"{norm:>8}: held-out total {s['final_total']['mean']:.4g} (curve avg "
                   f"{s['curve_avg_total']['mean']:.4g}), {s['train_images_per_s']['mean']:.3g} train img/s")


@ablate_group.command("stats")
@common_options
@click.option("--weights", default=DEFAULT_ENCODER, show_default=True, help=WEIGHTS_HELP)
@click.option("--size", type=click.IntRange(min=16), default=None, help="Image side (full 256, quick 64).")
@click.option("--batch-sizes", type=BATCH_SIZES, default=None, help="Batch sizes to test (2,4,8).")
@click.option("--compositions", type=click.IntRange(min=2), default=None, help="Batches per target image (full 5, quick 4).")
@click.option("--targets", type=click.IntRange(min=1), default=None, help="Target images (full 8, quick 4).")
@click.option("--pool", type=click.IntRange(min=3), default=None, help="Images to draw batches from (full 24, quick 12).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="TransformerNet width (full 32, quick 16).")
@click.option("--blocks", "residual_blocks", type=click.IntRange(min=0), default=None, help="Residual blocks (full 5, quick 3).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (0).")
@click.option("--content", type=click.Path(), default=None,
              help="Folder of content photos (the sample photos installed with the package).")
@click.option("--style", type=click.Path(), default=None, help="Style image (the installed sample mosaic.jpg).")
@click.option("--decoder", type=click.Path(dir_okay=False), default=None,
              help="AdaIN decoder file (default: a random decoder; fine for this metric).")
@click.option("--transformer", type=click.Path(dir_okay=False), default=None,
              help="A network written by `ablate norm --save-nets` (default: random networks of every norm).")
@click.pass_context
def stats_command(ctx, output_dir, quick, device, threads, overwrite, progress, weights, **overrides) -> None:
    """Batch dependence of AdaIN with instance vs batch statistics, and of BN in train vs eval mode."""
    from ..ablate import stats as stats_ablation

    config = _config(stats_ablation.QUICK, stats_ablation.StatsConfig(), quick, device=device, weights=weights,
                     **overrides).validate()

    def work(command: str) -> dict:
        return stats_ablation.run(config, _encoder(config.weights, config.device), command=command,
                                  progress=progress)

    results = _run(ctx, output_dir, overwrite, threads, work, stats_ablation.build_markdown)
    unexpected = [r for r in results["rows"] if not r["as_expected"]]
    click.echo("every method behaved as expected" if not unexpected else
               f"{len(unexpected)} row(s) NOT as expected: see results.md")


@ablate_group.command("adabn")
@common_options
@click.option("--shift", "shifts", multiple=True, type=NAMES,
              help="Target-domain shift(s), repeatable or comma-separated: color, contrast, noise, texture, invert, "
                   "style (default all).")
@click.option("--seeds", type=SEEDS, default=None, help="Seeds (full and quick: 0,1,…,9).")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Training iterations (full 3000, quick 500).")
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="Training batch size (64).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate (full 2e-3, quick 3e-3).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Classifier width (full 32, quick 16).")
@click.option("--classes", type=click.IntRange(min=2), default=None, help="Shape classes (8).")
@click.option("--test-images", type=click.IntRange(min=1), default=None, help="Test images per domain (full 5000, quick 1000).")
@click.option("--adapt-images", type=click.IntRange(min=1), default=None,
              help="Unlabeled target images for adaBN (full 5000, quick 1000).")
@click.option("--adapt-batch", type=click.IntRange(min=2), default=None, help="adaBN batch size (100).")
@click.pass_context
def adabn_command(ctx, output_dir, quick, device, threads, overwrite, progress, shifts, **overrides) -> None:
    """Train a BN classifier on synthetic shapes; test on shifted domains before and after adaBN."""
    from ..ablate import adabn as adabn_ablation

    names = tuple(name for group in shifts for name in group) or None
    config = _config(adabn_ablation.QUICK, adabn_ablation.AdaBNConfig(), quick, device=device, shifts=names,
                     **overrides).validate()

    def work(command: str) -> dict:
        return adabn_ablation.run(config, command=command, progress=progress)

    results = _run(ctx, output_dir, overwrite, threads, work, adabn_ablation.build_markdown)
    for shift in config.shifts:
        s = results["summary"]["shifts"][shift]
        click.echo(f"{shift:>8}: target {100 * s['target_before']['mean']:.1f}% → {100 * s['target_after']['mean']:.1f}% "
                   f"after adaBN ({s['verdict']})")


@ablate_group.command("moments")
@common_options
@click.option("--weights", default=None, help="Encoder weights (default vgg19, the original VGG19; magenta, "
                                               "imagenet, a file).")
@click.option("--levels", type=NAMES, default=None,
              help="Losses to match, the first the reference (gram,mmd-linear,bn-stats,mean-cov,mmd-rbf,sliced-wasserstein).")
@click.option("--content-dir", default=None, help="Content images (the installed sample photos).")
@click.option("--style-dir", default=None, help="Style images (the installed sample styles): every content × style pair is run.")
@click.option("--size", type=click.IntRange(min=16), default=None, help="Output long edge (full 384, quick 128).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="L-BFGS evaluations (full 300, quick 80).")
@click.option("--calibrate", type=click.IntRange(min=0), default=None,
              help="Runs per level to match the reference's content loss (full 3, quick 2).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (0).")
@click.pass_context
def moments_command(ctx, output_dir, quick, device, threads, overwrite, progress, levels, **overrides) -> None:
    """Match each level of the moment hierarchy on many pairs; measure with every level and a judge."""
    from ..ablate import moments as moments_ablation

    config = _config(moments_ablation.QUICK, moments_ablation.MomentsConfig(), quick, device=device, levels=levels,
                     **overrides).validate()

    def work(command: str) -> dict:
        return moments_ablation.run(config, command=command, output_dir=output_dir, progress=progress)

    results = _run(ctx, output_dir, overwrite, threads, work, moments_ablation.build_markdown)
    for level, difference in results["judge_vs_reference"].items():
        click.echo(f"{level:>20}: judge − judge({results['reference']}) {difference['mean']:+.3f} "
                   f"[{difference['low']:+.3f}, {difference['high']:+.3f}]")
