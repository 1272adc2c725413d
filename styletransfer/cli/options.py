"""Options that several commands share, declared once, their defaults read from the configs.

An option that only some ``--method`` values read says so where it is declared (``methods=``, a
question asked of each method's entry, such as "does its config have ``tile_size``?"): its help
then starts with those methods, and ``reject_other_method_options`` refuses it for any other
method. The same groups serve ``compare``, where every method runs, so there they are declared
without owners. ``method_choice`` lists the registered methods when the flag is read.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import click

from .. import optimize
from ..errors import UsageError
from ..imageio import DEFAULT_MAX_PIXELS
from ..magenta.encoder import CONTENT_LAYERS as MAGENTA_CONTENT_LAYERS
from ..magenta.encoder import SOURCES as MAGENTA_SOURCES
from ..magenta.encoder import STYLE_LAYERS as MAGENTA_STYLE_LAYERS
from ..methods import METHODS, Method
from ..parsing import parse_loss_params
from ..weights import DEFAULT_ENCODER
from .params import NAMES

Reads = Callable[[Method], bool]  # which methods read an option, asked of each entry

WEIGHTS_HELP = (f"Encoder weights: vgg19 (the original VGG19, installed with the package; the default), imagenet "
                f"(torchvision's retrained VGG19, downloaded), {' or '.join(MAGENTA_SOURCES)} (installed), a "
                ".pth/.safetensors file, a downloaded manifest name (styletransfer weights list), or "
                "random[:SEED] (tests only).")


# which methods read an option: questions asked of each entry
def optimising(method: Method) -> bool:
    return not method.feedforward


def style_files(method: Method) -> bool:
    """Feed-forward with style images: style files, folders and clips."""
    return method.feedforward and method.style_images


def built_in_styles(method: Method) -> bool:
    return not method.style_images


def encoder_users(method: Method) -> bool:
    return method.needs_encoder


def decoder_users(method: Method) -> bool:
    return method.needs_decoder


def setting(field: str) -> Reads:
    """The methods whose config has ``field`` (an option that sets it)."""
    return lambda method: method.reads(field)


class MethodOption(click.Option):
    """An option read by some ``--method`` values only: those whose entry ``reads`` accepts."""

    def __init__(self, *decls, reads: Reads, **attrs) -> None:
        self.reads = reads
        attrs["help"] = f"[{', '.join(self.methods)}] {attrs.get('help') or ''}".rstrip()
        super().__init__(*decls, **attrs)

    @property
    def methods(self) -> tuple[str, ...]:
        """The registered methods that read it, as registered now."""
        return tuple(name for name, method in METHODS.items() if self.reads(method))


def option(*decls, methods: Reads | None = None, **attrs):
    """``click.option``, read only by the ``methods`` an entry question accepts (see ``MethodOption``)."""
    if methods is None:
        return click.option(*decls, **attrs)
    return click.option(*decls, cls=MethodOption, reads=methods, **attrs)


def reject_other_method_options(ctx: click.Context, method: str) -> None:
    """Refuse an option typed on the command line that ``method`` does not read."""
    for param in ctx.command.params:
        if (isinstance(param, MethodOption) and not param.reads(METHODS.get(method))
                and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE):
            owners = ", ".join(param.methods[:-1]) + " and " * (len(param.methods) > 1) + param.methods[-1]
            raise UsageError(f"{param.opts[0]} applies to --method {owners} only "
                             f"(this run uses --method {method})")


class RegistryChoice(click.Choice):
    """A ``click.Choice`` of names read when the flag is, so an entry registered after the command
    was built (a plugin, a test's method) is accepted like the others."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self.names = names
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self.names())

    @choices.setter
    def choices(self, value) -> None:  # click's __init__ assigns the (empty) tuple it was given
        pass


def method_choice(accepts: Reads = lambda method: True) -> RegistryChoice:
    """The registered methods that ``accepts`` lets through, as ``--method``'s choice."""
    return RegistryChoice(lambda: [name for name, method in METHODS.items() if accepts(method)])


def method_help(accepts: Reads = lambda method: True) -> str:
    """``--method``'s help: each method with its summary."""
    return "; ".join(f"{name}: {method.summary}" for name, method in METHODS.items() if accepts(method)) + "."


# StylizeConfig fields that the shared options below set under their own names
SHARED_SETTINGS = ("style_layers", "content_layers", "style_weight", "content_weight", "tv_weight", "optimizer", "lr",
                   "steps", "seed")


def stylize_config(opts: dict, **fields) -> optimize.StylizeConfig:
    """The optimisation settings of the shared options (``optimizer``, ``size``, ``layers``,
    ``weights_of_terms``, ``loss_param``, ``seed``), with a command's own ``fields`` on top."""
    settings = {"loss_options": parse_loss_params(opts["loss_param"]), "scales": (opts["size"],),
                **{name: opts[name] for name in SHARED_SETTINGS}}
    return optimize.StylizeConfig(**{**settings, **fields})


def stylize_default(name: str):
    """The default of a ``StylizeConfig`` field, so that no command restates it."""
    field = next(f for f in dataclasses.fields(optimize.StylizeConfig) if f.name == name)
    return field.default


def apply(*options):
    """One decorator applying ``options`` in the order given (as if stacked in that order)."""
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def encoder(methods: Reads | None = None):
    """--weights and --pooling (read by ``methods``), and --device (read by every method)."""
    return apply(
        option("--weights", default=DEFAULT_ENCODER, show_default=True, help=WEIGHTS_HELP, methods=methods),
        option("--pooling", type=click.Choice(["max", "avg"]), default=None,
               help="Pooling of the VGG19 encoders (default: the weights').", methods=methods),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
    )


def optimizer(methods: Reads | None = None):
    return apply(
        option("--optimizer", type=click.Choice([optimize.AUTO_OPTIMIZER, *optimize.OPTIMIZERS.names()]),
               default=stylize_default("optimizer"), show_default=True, methods=methods,
               help="lbfgs-wolfe: L-BFGS with a strong Wolfe line search; lbfgs: without one (Gatys et al.); "
                    "auto: lbfgs-wolfe, or lbfgs when a loss redraws its random parameters at every evaluation "
                    "(sliced-wasserstein, mmd-rbf with estimator=linear)."),
        option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, methods=methods,
               help="Learning rate (default "
                    + ", ".join(f"{o.default_lr:g} for {k}" for k, o in optimize.OPTIMIZERS.items()) + ")."),
        option("--steps", type=click.IntRange(min=1), default=stylize_default("steps"), show_default=True,
               help="Steps per scale (L-BFGS: objective evaluations).", methods=methods),
    )


def size(methods: Reads | None = None):
    return option("--size", type=click.IntRange(min=16), default=stylize_default("scales")[-1], show_default=True,
                  help="Output long edge.", methods=methods)


def layers(methods: Reads | None = None):
    return apply(
        option("--style-layers", type=NAMES, default=None, methods=methods,
               help="Style layers [the encoder's: VGG19 " + ",".join(optimize.DEFAULT_STYLE_LAYERS) + "; magenta "
                    + ",".join(MAGENTA_STYLE_LAYERS) + "]."),
        option("--content-layers", type=NAMES, default=None, methods=methods,
               help="Content layers [the encoder's: VGG19 " + ",".join(optimize.DEFAULT_CONTENT_LAYERS) + "; magenta "
                    + ",".join(MAGENTA_CONTENT_LAYERS) + "]."),
    )


def weights_of_terms(methods: Reads | None = None):
    return apply(*(
        option(f"--{term}-weight", type=click.FloatRange(min=0), default=stylize_default(f"{term}_weight"),
               show_default=True, methods=methods) for term in ("style", "content", "tv")
    ))


def loss_param(methods: Reads | None = None):
    return option("--loss-param", multiple=True, help="Loss option LOSS.OPTION=VALUE, e.g. mmd-poly.c=1.",
                  methods=methods)


def seed(methods: Reads | None = None):
    return option("--seed", type=int, default=stylize_default("seed"), show_default=True, methods=methods)


INPUT_AND_PROGRESS = apply(
    click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
                 help="Refuse larger input images."),
    click.option("--progress/--no-progress", default=True, show_default=True),
)
