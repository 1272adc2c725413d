"""A request's form fields → a validated job, and what the page offers: pure functions.

Choices and defaults come from where the CLI takes them: the ``METHODS`` and ``STYLE_LOSSES``
registries, the encoder sources, the colour-preservation choices, ``StylizeConfig`` and each
method's config (its entry builds it; the config checks the values, as for the CLI). Every
refusal is a ``UsageError`` whose message the page shows as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

from .. import color
from ..compare import CompareConfig, select_methods
from ..errors import UsageError
from ..losses import STYLE_LOSSES
from ..methods import METHODS
from ..optimize import StylizeConfig
from ..parsing import parse_loss_list
from ..registry import did_you_mean
from ..weights import ENCODER_SOURCES
from .settings import ServerSettings

KINDS = ("stylize", "compare")
FIRST_METHOD = "magenta"  # the page's first choice: a result in about a second, no download
FIELDS = ("kind", "method", "losses", "weights", "size", "steps", "alpha", "preserve_color", "methods",
          "content_sample", "style_sample")
MAX_FIELD_CHARS = 2000


@dataclass(frozen=True)
class JobRequest:
    """One validated job: what to run and with which settings (a config the library validated)."""

    kind: str  # "stylize" or "compare"
    method: str  # a METHODS name; "compare" for a comparison
    weights: str  # an encoder source the server offers (never a path from the request)
    config: object  # the method's config (StylizeConfig, MagentaConfig, ...) or a CompareConfig

    @property
    def preserve_color(self) -> str:
        return getattr(self.config, "preserve_color", color.NONE)  # a comparison preserves none

    @property
    def planned_steps(self) -> int | None:
        """Objective evaluations an optimisation will report (None: not an optimisation)."""
        return sum(self.config.scale_steps()) if isinstance(self.config, StylizeConfig) else None

    def summary(self) -> dict:
        return {"kind": self.kind, "method": self.method, "weights": self.weights,
                "preserve_color": self.preserve_color, "config": self.config.to_dict()}


def loss_text(losses) -> str:
    """(('gram', 1.0),) → 'gram:1', the syntax of ``--loss`` (``parse_loss_list`` reads it back)."""
    return ",".join(f"{name}:{weight:g}" for name, weight in losses)


def encoder_choices(settings: ServerSettings) -> list[str]:
    """The encoder weights a request may name: the server's own, then the registered sources."""
    return list(dict.fromkeys([settings.weights, *ENCODER_SOURCES.names()]))


def page_methods() -> list[str]:
    """The methods the page offers: those that take the uploaded style image (not cin, whose
    styles are built in: the CLI's ``--method cin --style-index``)."""
    return [name for name, method in METHODS.items() if method.style_images]


def available_methods(settings: ServerSettings) -> list[str]:
    return [name for name in page_methods() if settings.decoder is not None or not METHODS.get(name).needs_decoder]


def page_options(settings: ServerSettings) -> dict:
    """Everything the page's form is built from."""
    base, first = StylizeConfig(), METHODS.get(FIRST_METHOD)
    return {
        "methods": [{"name": name, "summary": method.summary, "feedforward": method.feedforward,
                     "needs_decoder": method.needs_decoder, "available": name in available_methods(settings)}
                    for name, method in METHODS.items() if name in page_methods()],
        "first_method": FIRST_METHOD,
        "losses": STYLE_LOSSES.names(),
        "weights": encoder_choices(settings),
        "preserve_color": color.choices(),
        "compare_methods": list(select_methods(decoder=settings.decoder is not None)),
        "defaults": {"weights": settings.weights, "size": base.scales[-1], "steps": base.steps,
                     "alpha": first.default("alpha"), "preserve_color": first.default("preserve_color"),
                     "losses": loss_text(base.losses)},
        "limits": {"max_size": settings.max_size, "max_steps": settings.max_steps,
                   "max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels,
                   "queue_size": settings.queue_size, "workers": settings.workers},
    }


def _text(fields: Mapping[str, str], name: str, default: str) -> str:
    value = fields.get(name)
    return default if value is None or not value.strip() else value.strip()


def _number(fields: Mapping[str, str], name: str, default, kind: type, low=None, high=None):
    """``fields[name]`` as ``kind``, within [low, high] when given (the page's limits; a config
    checks its own ranges); the default when absent or empty."""
    text = fields.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = kind(text.strip())
    except ValueError:
        raise UsageError(f"{name}: {text[:40]!r} is not {'a whole number' if kind is int else 'a number'}") from None
    if low is not None and not (math.isfinite(value) and low <= value <= high):
        raise UsageError(f"{name} must be between {low:g} and {high:g}, got {text[:40]}")
    return value


def _choice(value: str, choices: list[str], what: str) -> str:
    if value not in choices:
        raise UsageError(f"unknown {what} {value[:60]!r}{did_you_mean(value, choices)}: "
                         f"choose from {', '.join(choices)}")
    return value


def check_fields(fields: Mapping[str, str]) -> None:
    """Refuse unknown field names and oversized values (a typo is an error, not a silent default)."""
    for name, value in fields.items():
        _choice(name, list(FIELDS), "field")
        if len(value) > MAX_FIELD_CHARS:
            raise UsageError(f"field {name} is longer than {MAX_FIELD_CHARS} characters")


def parse_job(fields: Mapping[str, str], settings: ServerSettings) -> JobRequest:
    """The job a form asks for, every value checked before anything is queued."""
    check_fields(fields)
    kind = _choice(_text(fields, "kind", "stylize"), list(KINDS), "kind")
    weights = _choice(_text(fields, "weights", settings.weights), encoder_choices(settings), "encoder weights")
    preserve_color = _choice(_text(fields, "preserve_color", color.NONE), color.choices(), "colour preservation")
    base = StylizeConfig()
    size = _number(fields, "size", base.scales[-1], int, 16, settings.max_size)
    steps = _number(fields, "steps", base.steps, int, 1, settings.max_steps)
    optimize = replace(base, steps=steps, scales=(size,))
    if kind == "compare":
        only = [name.strip() for name in _text(fields, "methods", "").split(",") if name.strip()] or None
        methods = select_methods(only=only, decoder=settings.decoder is not None)
        config = CompareConfig(stylize=optimize, methods=methods).validate()
        return JobRequest(kind, "compare", weights, config)
    method = METHODS.get(_text(fields, "method", FIRST_METHOD))
    if not method.style_images:
        raise UsageError(f"method {method.name} has its styles built in and takes no style image; the page runs "
                         f"{', '.join(page_methods())}: use the command line (styletransfer stylize --method "
                         f"{method.name})")
    if method.needs_decoder and settings.decoder is None:
        raise UsageError(f"method {method.name} needs an AdaIN decoder: start the server with --decoder PATH")
    if method.feedforward:
        config = method.make_config(alpha=_number(fields, "alpha", None, float), preserve_color=preserve_color,
                                    content_size=size).validate()
    else:
        losses = parse_loss_list(_text(fields, "losses", loss_text(base.losses)))
        config = replace(optimize, losses=losses, preserve_color=preserve_color).validate()
    return JobRequest(kind, method.name, weights, config)
