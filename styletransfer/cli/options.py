"""Options that several commands share, declared once, their defaults read from the configs."""

from __future__ import annotations

import dataclasses

import click

from .. import optimize as S
from ..imageio import DEFAULT_MAX_PIXELS
from ..magenta.encoder import CONTENT_LAYERS as MAGENTA_CONTENT_LAYERS
from ..magenta.encoder import STYLE_LAYERS as MAGENTA_STYLE_LAYERS
from ..magenta.encoder import SOURCES as MAGENTA_SOURCES
from .params import NAMES

WEIGHTS_HELP = (f"Encoder weights: imagenet, {' or '.join(MAGENTA_SOURCES)} (installed with the package), a "
                ".pth/.safetensors file, a downloaded manifest name (styletransfer weights list), or "
                "random[:SEED] (tests only).")


def stylize_default(name: str):
    """The default of a ``StylizeConfig`` field, so that no command restates it."""
    field = next(f for f in dataclasses.fields(S.StylizeConfig) if f.name == name)
    return field.default


def apply(*options):
    """One decorator applying ``options`` in the order given (as if stacked in that order)."""
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


ENCODER = apply(
    click.option("--weights", default="imagenet", show_default=True, help=WEIGHTS_HELP),
    click.option("--pooling", type=click.Choice(["max", "avg"]), default=None,
                 help="Pooling of the VGG19 encoders (default: the weights')."),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
)

OPTIMIZER = apply(
    click.option("--optimizer", type=click.Choice(S.OPTIMIZERS.names()), default=stylize_default("optimizer"),
                 show_default=True),
    click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
                 help="Learning rate (default " + ", ".join(f"{o.default_lr:g} for {k}" for k, o in S.OPTIMIZERS.items()) + ")."),
    click.option("--steps", type=click.IntRange(min=1), default=stylize_default("steps"), show_default=True,
                 help="Steps per scale (L-BFGS: objective evaluations)."),
)

SIZE = click.option("--size", type=click.IntRange(min=16), default=stylize_default("scales")[-1], show_default=True,
                    help="Output long edge.")

LAYERS = apply(
    click.option("--style-layers", type=NAMES, default=None,
                 help="Style layers [the encoder's: VGG19 " + ",".join(S.DEFAULT_STYLE_LAYERS) + "; magenta "
                      + ",".join(MAGENTA_STYLE_LAYERS) + "]."),
    click.option("--content-layers", type=NAMES, default=None,
                 help="Content layers [the encoder's: VGG19 " + ",".join(S.DEFAULT_CONTENT_LAYERS) + "; magenta "
                      + ",".join(MAGENTA_CONTENT_LAYERS) + "]."),
)

WEIGHTS_OF_TERMS = apply(*(
    click.option(f"--{term}-weight", type=click.FloatRange(min=0), default=stylize_default(f"{term}_weight"),
                 show_default=True) for term in ("style", "content", "tv")
))

LOSS_PARAM = click.option("--loss-param", multiple=True, help="Loss option LOSS.OPTION=VALUE, e.g. mmd-poly.c=1.")
SEED = click.option("--seed", type=int, default=stylize_default("seed"), show_default=True)

INPUT_AND_PROGRESS = apply(
    click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
                 help="Refuse larger input images."),
    click.option("--progress/--no-progress", default=True, show_default=True),
)
