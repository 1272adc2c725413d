"""Parsers of list-valued settings written as text (``0.7,0.3``, ``gram:0.5,bn-stats:0.5``), for the
command line and the web form alike; malformed text is a usage error (exit code 2)."""

from __future__ import annotations

import math

from .errors import UsageError


def parse_float_list(text: str, *, name: str = "value", minimum: float | None = None) -> tuple[float, ...]:
    """'0.7,0.3' → (0.7, 0.3). Every entry must be a finite number (≥ minimum if given)."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"{name}: {part!r} is not a number (expected e.g. 0.7,0.3)") from None
        if not math.isfinite(value) or (minimum is not None and value < minimum):
            raise UsageError(f"{name}: {part!r} must be a finite number ≥ {minimum}")
        values.append(value)
    return tuple(values)


def parse_int_list(text: str, *, name: str = "value", minimum: int = 1) -> tuple[int, ...]:
    """'256,512' → (256, 512), each ≥ minimum."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.lstrip("+").isdigit()):  # "¹".isdigit() is True, int("¹") fails
            raise UsageError(f"{name}: {part!r} is not a whole number (expected e.g. 256,512)")
        value = int(part)
        if value < minimum:
            raise UsageError(f"{name}: {value} is below the minimum {minimum}")
        values.append(value)
    return tuple(values)


def parse_name_list(text: str, *, name: str = "value") -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(","))
    if not all(parts):
        raise UsageError(f"{name}: empty entry in {text!r} (expected e.g. relu1_1,relu2_1)")
    return parts


def parse_loss_list(texts: tuple[str, ...] | list[str] | str) -> tuple[tuple[str, float], ...]:
    """'gram:0.5,bn-stats:0.5' (or several such flags) → (('gram', 0.5), ('bn-stats', 0.5))."""
    if isinstance(texts, str):
        texts = (texts,)
    losses: dict[str, float] = {}
    for text in texts:
        for part in text.split(","):
            name, sep, weight_text = part.strip().partition(":")
            name = name.strip()
            if not name:
                raise UsageError(f"--loss: empty loss name in {text!r} (expected e.g. gram:0.5,bn-stats:0.5)")
            weight = 1.0
            if sep:
                (weight,) = parse_float_list(weight_text, name=f"--loss {name}", minimum=0.0)
            losses[name] = losses.get(name, 0.0) + weight
    if not losses:
        raise UsageError("--loss: give at least one loss name")
    return tuple(losses.items())


def parse_loss_params(texts: tuple[str, ...]) -> dict[str, dict]:
    """'mmd-poly.c=1' → {'mmd-poly': {'c': 1.0}}; integers stay integers, other words strings."""
    options: dict[str, dict] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        loss, dot, option = key.strip().rpartition(".")
        if not (sep and dot and loss and option and value.strip()):
            raise UsageError(f"--loss-param {text!r}: expected LOSS.OPTION=VALUE, e.g. mmd-poly.c=1")
        value = value.strip()
        parsed: object = value
        for cast in (int, float):
            try:
                parsed = cast(value)
                break
            except ValueError:
                continue
        options.setdefault(loss, {})[option.strip()] = parsed
    return options
