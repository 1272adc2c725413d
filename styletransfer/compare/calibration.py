"""Equal strength before comparing formulations: each style weight chosen for one content loss.

With one shared ``--style-weight`` the formulations differ in strength as well as in kind: one
loss may pull harder against the content term than another. ``--calibrate N`` gives every
optimisation method up to N stylisations to find the style weight whose output has the
reference content loss (that of the first optimisation method at the shared weight), so the
rows differ by formulation only. The search is a secant method on log(content loss) against
log(style weight), on which the content loss of a stylisation is close to a straight line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

DEFAULT_TOLERANCE = 0.05  # relative: content losses within 5% of the target count as equal
MAX_STEP = 100.0  # a single update changes the weight by at most this factor
# d log(content loss) / d log(style weight) before two tries give a secant: the median over the 69
# two-try calibrations of `ablate moments --quick` (magenta encoder, 12 pairs, 5 losses) was 0.18
INITIAL_SLOPE = 0.2


@dataclass(frozen=True)
class Calibration:
    """The weight chosen and every (style weight, content loss) tried, in order."""

    style_weight: float
    content_loss: float
    target: float
    tried: tuple[tuple[float, float], ...]

    @property
    def relative_error(self) -> float:
        return abs(self.content_loss / self.target - 1)

    def to_dict(self) -> dict:
        return {"style_weight": self.style_weight, "content_loss": self.content_loss, "target": self.target,
                "relative_error": self.relative_error, "tried": [list(t) for t in self.tried]}


def next_weight(tried: list[tuple[float, float]], target: float) -> float:
    """The secant step in log–log space through the last two tries (INITIAL_SLOPE from one try, or
    when the last two do not give a positive finite slope), limited to a factor MAX_STEP."""
    weight, loss = tried[-1]
    slope = INITIAL_SLOPE
    if len(tried) >= 2:
        (w0, c0), (w1, c1) = tried[-2], tried[-1]
        if w0 != w1 and c0 > 0 and c1 > 0:
            estimate = (math.log(c1) - math.log(c0)) / (math.log(w1) - math.log(w0))
            if math.isfinite(estimate) and estimate > 0:
                slope = estimate
    if loss <= 0:
        return weight * MAX_STEP
    # in log space: a shallow secant (slope → 0) asks for a huge factor, which MAX_STEP bounds
    log_factor = (math.log(target) - math.log(loss)) / slope
    return weight * math.exp(min(max(log_factor, -math.log(MAX_STEP)), math.log(MAX_STEP)))


def calibrate(content_loss_at: Callable[[float], float], target: float, start: float, *, runs: int,
              tolerance: float = DEFAULT_TOLERANCE) -> Calibration:
    """At most ``runs`` calls of ``content_loss_at(style_weight)`` (a stylisation each) from
    ``start``; stops early within ``tolerance``; returns the try closest to ``target``."""
    if runs < 1:
        raise ValueError("calibration needs at least one run")
    tried: list[tuple[float, float]] = []
    weight = start
    for _ in range(runs):
        tried.append((weight, content_loss_at(weight)))
        if abs(tried[-1][1] / target - 1) <= tolerance:
            break
        weight = next_weight(tried, target)
    best = min(tried, key=lambda t: abs(math.log(max(t[1], 1e-30) / target)))
    return Calibration(best[0], best[1], target, tuple(tried))
