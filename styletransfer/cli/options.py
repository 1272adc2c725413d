"""Options that several commands share, declared once, their defaults read from the configs.

An option that only some ``stylize --method`` values read says so where it is declared
(``methods=``): its help then starts with those methods, and ``reject_other_method_options``
refuses it for any other method. The same groups serve ``compare``, where every method runs, so
there they are declared without owners.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import click

from .. import optimize as S
from ..imageio import DEFAULT_MAX_PIXELS
from ..magenta.encoder import CONTENT_LAYERS as MAGENTA_CONTENT_LAYERS
from ..magenta.encoder import STYLE_LAYERS as MAGENTA_STYLE_LAYERS
from ..magenta.encoder import SOURCES as MAGENTA_SOURCES
from .params import NAMES
from ..weights import DEFAULT_ENCODER

WEIGHTS_HELP = (f"Encoder weights: vgg19 (the original VGG19, installed with the package; the default), imagenet "
                f"(torchvision's retrained VGG19, downloaded), {' or '.join(MAGENTA_SOURCES)} (installed), a "
                ".pth/.safetensors file, a downloaded manifest name (styletransfer weights list), or "
                "random[:SEED] (tests only).")


class MethodOption(click.Option):
    """An option read by some ``--method`` values only."""

    def __init__(self, *decls, methods: Sequence[str], **attrs) -> None:
        self.methods = tuple(methods)
        attrs["help"] = f"[{', '.join(self.methods)}] {attrs.get('help') or ''}".rstrip()
        super().__init__(*decls, **attrs)


def option(*decls, methods: Sequence[str] | None = None, **attrs):
    """``click.option``, owned by ``methods`` when given (see ``MethodOption``)."""
    if methods is None:
        return click.option(*decls, **attrs)
    return click.option(*decls, cls=MethodOption, methods=methods, **attrs)


def reject_other_method_options(ctx: click.Context, method: str) -> None:
    """Refuse an option typed on the command line that ``method`` does not read."""
    for param in ctx.command.params:
        if (isinstance(param, MethodOption) and method not in param.methods
                and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE):
            from ..errors import UsageError

            owners = ", ".join(param.methods[:-1]) + " and " * (len(param.methods) > 1) + param.methods[-1]
            raise UsageError(f"{param.opts[0]} applies to --method {owners} only "
                             f"(this run uses --method {method})")


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


def encoder(methods: Sequence[str] | None = None):
    """--weights and --pooling (read by ``methods``), and --device (read by every method)."""
    return apply(
        option("--weights", default=DEFAULT_ENCODER, show_default=True, help=WEIGHTS_HELP, methods=methods),
        option("--pooling", type=click.Choice(["max", "avg"]), default=None,
               help="Pooling of the VGG19 encoders (default: the weights').", methods=methods),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
    )


def optimizer(methods: Sequence[str] | None = None):
    return apply(
        option("--optimizer", type=click.Choice([S.AUTO_OPTIMIZER, *S.OPTIMIZERS.names()]),
               default=stylize_default("optimizer"), show_default=True, methods=methods,
               help="lbfgs-wolfe: L-BFGS with a strong Wolfe line search; lbfgs: without one (Gatys et al.); "
                    "auto: lbfgs-wolfe, or lbfgs when a loss redraws its random parameters at every evaluation "
                    "(sliced-wasserstein, mmd-rbf with estimator=linear)."),
        option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, methods=methods,
               help="Learning rate (default " + ", ".join(f"{o.default_lr:g} for {k}" for k, o in S.OPTIMIZERS.items()) + ")."),
        option("--steps", type=click.IntRange(min=1), default=stylize_default("steps"), show_default=True,
               help="Steps per scale (L-BFGS: objective evaluations).", methods=methods),
    )


def size(methods: Sequence[str] | None = None):
    return option("--size", type=click.IntRange(min=16), default=stylize_default("scales")[-1], show_default=True,
                  help="Output long edge.", methods=methods)


def layers(methods: Sequence[str] | None = None):
    return apply(
        option("--style-layers", type=NAMES, default=None, methods=methods,
               help="Style layers [the encoder's: VGG19 " + ",".join(S.DEFAULT_STYLE_LAYERS) + "; magenta "
                    + ",".join(MAGENTA_STYLE_LAYERS) + "]."),
        option("--content-layers", type=NAMES, default=None, methods=methods,
               help="Content layers [the encoder's: VGG19 " + ",".join(S.DEFAULT_CONTENT_LAYERS) + "; magenta "
                    + ",".join(MAGENTA_CONTENT_LAYERS) + "]."),
    )


def weights_of_terms(methods: Sequence[str] | None = None):
    return apply(*(
        option(f"--{term}-weight", type=click.FloatRange(min=0), default=stylize_default(f"{term}_weight"),
               show_default=True, methods=methods) for term in ("style", "content", "tv")
    ))


def loss_param(methods: Sequence[str] | None = None):
    return option("--loss-param", multiple=True, help="Loss option LOSS.OPTION=VALUE, e.g. mmd-poly.c=1.",
                  methods=methods)


def seed(methods: Sequence[str] | None = None):
    return option("--seed", type=int, default=stylize_default("seed"), show_default=True, methods=methods)


INPUT_AND_PROGRESS = apply(
    click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
                 help="Refuse larger input images."),
    click.option("--progress/--no-progress", default=True, show_default=True),
)
