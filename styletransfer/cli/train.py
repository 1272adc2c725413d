"""``styletransfer train``: train an AdaIN decoder (pytorch-AdaIN's recipe), resumable and crash-safe."""

from __future__ import annotations

import dataclasses
import sys

import click
from click.core import ParameterSource

from .. import training
from ..errors import UsageError
from ..norms import NORMS
from ..precision import DEFAULT_PRECISION, precision_names
from ..training import config as train_config
from ..weights import DEFAULT_ENCODER
from .options import apply

POSITIVE = click.IntRange(min=1)
NON_NEGATIVE = click.IntRange(min=0)
WEIGHT = click.FloatRange(min=0)
# Flags that only locate the run; everything else in TrainConfig may come from a checkpoint.
REQUIRED_FOR_NEW_RUN = ("content_dir", "style_dir", "out")


def _report(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


# Where the data, the encoder and the outputs are.
DATA_OPTIONS = (
    click.option("--content-dir", type=click.Path(), help="Folder of content images (searched recursively)."),
    click.option("--style-dir", type=click.Path(), help="Folder of style images (searched recursively)."),
    click.option("--out", type=click.Path(dir_okay=False), help="The trained decoder, weights/NAME.safetensors."),
    click.option("--weights", default=DEFAULT_ENCODER, show_default=True,
                 help="Encoder weights: vgg19 (the original VGG19, installed; the default), imagenet (downloaded), "
                      "random[:SEED] (tests only), or a .pth/.safetensors file."),
    click.option("--manifest", type=click.Path(dir_okay=False), default=None,
                 help="The data's manifest (scripts/fetch_data.py writes manifest.csv); the decoder's header records "
                      "its sha256."),
    click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
                 help="Checkpoints, log.jsonl and previews/ (default: <out without suffix>.ckpt beside --out)."),
    click.option("--resume", type=click.Path(), default=None,
                 help="Continue a run: its checkpoint folder (newest intact checkpoint) or a state_*.pt file."),
)
# What the decoder learns and how: the settings that define a run (a resumed run keeps them).
OBJECTIVE_OPTIONS = (
    click.option("--objective", type=click.Choice(train_config.OBJECTIVES), default="adain", show_default=True,
                 help="adain: pytorch-AdaIN's content + style losses; reconstruction: the decoder inverts the encoder "
                      "(--pixel-weight · MSE(g, c) + --content-weight · relu4_1 MSE; no style), a fast start for --init."),
    click.option("--content-weight", type=WEIGHT, default=train_config.DEFAULT_CONTENT_WEIGHT, show_default=True),
    click.option("--style-weight", type=WEIGHT, default=train_config.DEFAULT_STYLE_WEIGHT, show_default=True),
    click.option("--pixel-weight", type=WEIGHT, default=0.0, show_default=True,
                 help="reconstruction: weight of MSE(g, c); adain: weight of the identity loss "
                      "MSE(decoder(relu4_1(c)), c), which keeps the decoder able to give the content back."),
    click.option("--style-balance", type=click.Choice(train_config.STYLE_BALANCES), default="none", show_default=True,
                 help="none: pytorch-AdaIN's style loss (layers summed as they are); rms: each layer weighted by "
                      "ms(relu4_1)/ms(layer) on the first style images, so shallow layers (colours) count."),
    click.option("--init", type=click.Path(dir_okay=False), default=None,
                 help="Start from this decoder file (e.g. a reconstruction run's) instead of a random decoder."),
    click.option("--norm", type=click.Choice(NORMS.names()), default="none", show_default=True,
                 help="Normalization after each inner decoder conv (none = pytorch-AdaIN's decoder)."),
    click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=train_config.DEFAULT_LR, show_default=True,
                 help="Adam learning rate at iteration 0."),
    click.option("--lr-decay", type=WEIGHT, default=train_config.DEFAULT_LR_DECAY, show_default=True,
                 help="lr_i = lr / (1 + lr_decay·i)."),
    click.option("--batch-size", type=POSITIVE, default=train_config.DEFAULT_BATCH_SIZE, show_default=True,
                 help="Images per step, over all processes together."),
    click.option("--image-size", type=click.IntRange(min=train_config.MIN_CROP), default=train_config.DEFAULT_IMAGE_SIZE,
                 show_default=True,
                 help="Each image is first resized to SIZE x SIZE."),
    click.option("--crop-size", type=click.IntRange(min=train_config.MIN_CROP), default=train_config.DEFAULT_CROP_SIZE,
                 show_default=True,
                 help="Then randomly cropped to SIZE x SIZE (a multiple of 8)."),
    click.option("--seed", type=NON_NEGATIVE, default=0, show_default=True,
                 help="Decoder initialisation, data order and crops."),
)
# How the run goes: its length, what it writes, the hardware.
RUN_OPTIONS = (
    click.option("--max-iter", type=POSITIVE, default=train_config.DEFAULT_MAX_ITER, show_default=True,
                 help="Total iterations of the run (a resumed run counts on)."),
    click.option("--save-every", type=POSITIVE, default=train_config.DEFAULT_SAVE_EVERY, show_default=True,
                 help="Checkpoint interval in iterations."),
    click.option("--keep", type=POSITIVE, default=train_config.DEFAULT_KEEP, show_default=True, help="Newest checkpoints kept."),
    click.option("--log-every", type=POSITIVE, default=train_config.DEFAULT_LOG_EVERY, show_default=True,
                 help="Write a line to the JSONL log every N iterations."),
    click.option("--preview-every", type=NON_NEGATIVE, default=train_config.DEFAULT_PREVIEW_EVERY, show_default=True,
                 help="Write a content|style|output preview grid every N iterations (0: never)."),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
    click.option("--workers", type=NON_NEGATIVE, default=train_config.DEFAULT_WORKERS, show_default=True,
                 help="Data loader processes per training process (0: load in the training process)."),
    click.option("--precision", type=click.Choice(precision_names()), default=DEFAULT_PRECISION, show_default=True,
                 help="bf16: encoder and decoder under bfloat16 autocast (weights, statistics and losses stay "
                      "float32); auto: bf16 where the CPU (AVX512-BF16, AMX) or GPU computes it natively."),
    click.option("--progress/--no-progress", default=True, show_default=True,
                 help="tqdm bar with content/style loss and images/s."),
)


@click.command("train")
@apply(*DATA_OPTIONS, *OBJECTIVE_OPTIONS, *RUN_OPTIONS)
@click.pass_context
def train_command(ctx: click.Context, resume, progress, **options) -> None:
    """Train an AdaIN decoder on a folder of content and a folder of style images.

    SIGINT/SIGTERM save a checkpoint and exit with 130/143; --resume continues from it.
    """
    given = {name for name in options if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    if resume is not None:
        if "checkpoint_dir" in given:
            raise UsageError("--checkpoint-dir cannot be combined with --resume: a resumed run keeps writing "
                             "to the folder of its checkpoint")
        stored = training.load_run_config(resume)
        config = dataclasses.replace(stored, checkpoint_dir=None, **{name: options[name] for name in given})
    else:
        missing = [f"--{name.replace('_', '-')}" for name in REQUIRED_FOR_NEW_RUN if not options[name]]
        if missing:
            raise UsageError(f"missing {', '.join(missing)}: a new run needs --content-dir, --style-dir and "
                             "--out (or continue a run with --resume CHECKPOINT)")
        config = training.TrainConfig(**options)
    import shlex

    command = shlex.join(["styletransfer", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else None
    result = training.train(config, resume=resume, progress=progress, report=_report, command=command)
    if result.rank != 0:
        ctx.exit(result.exit_code)
    if result.interrupted:
        click.echo(f"interrupted by {result.interrupted} at iteration {result.iteration}: checkpoint "
                   f"{result.checkpoint}; continue with --resume {result.checkpoint.parent if result.checkpoint else ''}",
                   err=True)
        ctx.exit(result.exit_code)
    last = result.history[-1] if result.history else None
    losses = f", content {last['content']:.4g}, style {last['style']:.4g}" if last else ""
    skipped = f", {len(result.skipped_files)} unreadable images skipped" if result.skipped_files else ""
    wrote = f"wrote {result.out}" if result.out else "finished"
    click.echo(f"{wrote} after {result.iteration} iterations{losses}{skipped}; "
               f"checkpoints in {result.checkpoint.parent if result.checkpoint else '-'}")
