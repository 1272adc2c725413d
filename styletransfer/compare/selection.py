"""Which methods a comparison runs, and its configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Sequence

from ..errors import UsageError
from ..losses import STYLE_LOSSES
from ..methods import METHODS, feedforward_methods
from ..optimize import StylizeConfig
from ..registry import did_you_mean

IDENTITY_MAX_POSITIONS = 1024  # positions per image for the quadratic-time kernel check


@dataclass
class CompareConfig:
    """The shared stylisation settings and the methods to run; stored whole in the report."""

    stylize: StylizeConfig  # each style-loss method replaces ``losses`` with its own loss alone
    methods: tuple[str, ...]
    identity_positions: int = IDENTITY_MAX_POSITIONS
    calibrate: int = 0  # > 0: up to this many runs per method to reach the first method's content loss
    judge: bool = True  # score every output with the independent judge (compare.judge)

    def validate(self) -> "CompareConfig":
        self.stylize.validate()
        if not self.methods:
            raise UsageError("no method left to compare: check --only and --skip")
        for name in self.methods:
            if name not in METHODS:
                STYLE_LOSSES.get(name)
        if self.calibrate < 0:
            raise UsageError(f"--calibrate must be ≥ 0 (runs per method), got {self.calibrate}")
        if self.identity_positions < 2:
            raise UsageError(f"identity_positions must be ≥ 2, got {self.identity_positions}")
        return self

    def method_config(self, method: str) -> StylizeConfig:
        return replace(self.stylize, losses=((method, 1.0),))

    def to_dict(self) -> dict:
        return asdict(self)


def available_methods(*, decoder: bool) -> list[str]:
    """Every registered style loss whose cost is linear in the positions, then each feed-forward
    method (those needing a decoder only when one is given). Quadratic losses (``mrf``) run when
    named with ``--only``."""
    return [*(name for name, loss in STYLE_LOSSES.items() if loss.cost == "linear"),
            *(m for m in feedforward_methods(style_images=True) if decoder or not METHODS.get(m).needs_decoder)]


def _check_method_names(names: Sequence[str], flag: str) -> None:
    known = [*STYLE_LOSSES.names(), *feedforward_methods(style_images=True)]
    for name in names:
        if name not in known:
            raise UsageError(f"{flag}: unknown method {name!r}{did_you_mean(name, known)}: "
                             f"choose from {', '.join(known)}")


def select_methods(*, only: Sequence[str] | None = None, skip: Sequence[str] = (),
                   decoder: bool = False) -> tuple[str, ...]:
    """The methods to run, in registry order: ``only`` (default: all available) minus ``skip``."""
    _check_method_names(only or (), "--only")
    _check_method_names(skip, "--skip")
    for name in only or ():
        if name in METHODS and METHODS.get(name).needs_decoder and not decoder:
            raise UsageError(f"--only {name} needs a decoder: pass --decoder PATH")
    candidates = [*STYLE_LOSSES.names(), *feedforward_methods(style_images=True)] if only else available_methods(decoder=decoder)
    chosen = [m for m in candidates if (not only or m in only) and m not in skip]
    if not chosen:
        raise UsageError("--only/--skip leave no method to compare")
    return tuple(chosen)


def same_objectives(methods: Sequence[str], config: StylizeConfig) -> dict[str, str]:
    """``{method: the earlier method with the same objective}``: style losses equal up to a constant
    factor (``StyleLoss.same_objective_as``: mmd-poly with d = 2, c = 0 is 4C²·gram), which the
    normalisation makes one objective. Such a method is run and shown once, under the first name."""
    if not config.normalize:
        return {}
    merged = {}
    for name in methods:
        if name in STYLE_LOSSES:
            twin = STYLE_LOSSES.get(name).same_objective_as(**config.loss_options.get(name, {}))
            if twin is not None and twin in methods and twin != name:
                merged[name] = twin
    return merged
