"""Style losses as thin modules over ``functional``: each caches its target's statistics once.

Every class is registered under the name the CLI's ``--loss`` takes. A module is built from
the style image's features at one layer; calling it on generated features returns the loss
per batch item, shape ``(N,)``.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..registry import Registry, did_you_mean
from . import functional as F

STYLE_LOSSES: Registry[type["StyleLoss"]] = Registry("style loss")
EXACT_MMD_MAX_BYTES = 4 * 2**30  # refuse a quadratic-time estimator whose kernel values need more


def exact_mmd_bytes(positions: int, target_positions: int, with_gradient: bool) -> int:
    """Memory of the exact MMD² between M and M' samples: the M², M'² and M·M' float32 kernel
    values, about twice over when autograd keeps them (dot products and their power) for backward."""
    values = positions**2 + target_positions**2 + positions * target_positions
    return values * 4 * (2 if with_gradient else 1)


class StyleLoss(nn.Module):
    """Distance between a feature distribution and a fixed target's, via sufficient statistics."""

    name: ClassVar[str]
    description: ClassVar[str]
    formula: ClassVar[str]
    reference: ClassVar[str]

    def __init__(self, target: Tensor, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        with torch.no_grad():
            self.prepare(target.detach(), generator)
            self.target_stats = tuple(s.detach() for s in self.statistics(target.detach()))

    def prepare(self, target: Tensor, generator: torch.Generator | None) -> None:
        """Fix any target-dependent parameters (bandwidths, random features)."""

    def statistics(self, features: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def distance(self, stats: tuple[Tensor, ...], target_stats: tuple[Tensor, ...]) -> Tensor:
        raise NotImplementedError

    def forward(self, features: Tensor) -> Tensor:
        return self.distance(self.statistics(features), self.target_stats)

    def formula_value(self, features: Tensor, target: Tensor) -> Tensor:
        """The loss written directly as its formula in ``functional`` (no cached statistics), with
        this module's options: tests check that ``self(features)`` equals it for every loss."""
        raise NotImplementedError

    def denominator(self, features: Tensor) -> Tensor:
        """The loss of ``features`` as a normalising denominator (the stylizer divides by its value
        on the content image): it must be non-negative and deterministic; per batch item, (N,)."""
        return self(features)


@STYLE_LOSSES.register("gram")
class GramLoss(StyleLoss):
    name = "gram"
    description = "Gatys et al.: squared distance of Gram matrices"
    formula = "1/(4C²) ‖G/M − A/M'‖²_F"
    reference = "Gatys, Ecker, Bethge 2016 (CVPR)"

    def formula_value(self, features, target):
        return F.gram_loss(features, target)

    def statistics(self, features):
        return (F.gram_matrix(features),)

    def distance(self, stats, target_stats):
        return F.gram_distance(stats[0], target_stats[0])


@STYLE_LOSSES.register("mmd-linear")
class LinearMMDLoss(StyleLoss):
    name = "mmd-linear"
    description = "MMD with the linear kernel: matches channel means"
    formula = "‖μx − μy‖²"
    reference = "Li et al. 2017, Demystifying Neural Style Transfer"

    def formula_value(self, features, target):
        return F.mmd_linear(features, target)

    def statistics(self, features):
        return (F.channel_mean(features),)

    def distance(self, stats, target_stats):
        return (stats[0] - target_stats[0]).pow(2).sum(-1)


@STYLE_LOSSES.register("mmd-poly")
class PolyMMDLoss(StyleLoss):
    name = "mmd-poly"
    description = "MMD with k = (xᵀy + c)^d; d = 2 in O(M·C²) from Grams and means"
    formula = "d=2: ‖G/M − A/M'‖²_F + 2c‖μx − μy‖²"
    reference = "Li et al. 2017, Demystifying Neural Style Transfer"

    def __init__(self, target: Tensor, *, degree: int = 2, c: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        if isinstance(degree, bool) or float(degree) != int(float(degree)) or float(degree) < 1:
            from ..errors import UsageError

            raise UsageError(f"mmd-poly degree must be a positive whole number, got {degree}")
        self.degree, self.c = int(degree), float(c)
        super().__init__(target, generator=generator)

    def statistics(self, features):
        if self.degree == 2:
            return F.gram_matrix(features), F.channel_mean(features)
        flat = F.flatten(features)  # (N, C, M): other degrees need the samples themselves, O(M²)
        target_positions = self.target_stats[0].shape[-1] if hasattr(self, "target_stats") else flat.shape[-1]
        needed = exact_mmd_bytes(flat.shape[-1], target_positions, features.requires_grad)
        if needed > EXACT_MMD_MAX_BYTES:
            from ..errors import UsageError

            raise UsageError(f"mmd-poly degree {self.degree} uses the exact O(M²) estimator: at {flat.shape[-1]} "
                             f"positions it needs about {needed / 2**30:.0f} GiB; use degree 2 (linear in M), a "
                             "smaller --size, or deeper --style-layers")
        return (flat,)

    def distance(self, stats, target_stats):
        if self.degree == 2:
            return F.mmd_poly2_distance(stats[0], stats[1], target_stats[0], target_stats[1], self.c)
        return F.mmd_poly(stats[0], target_stats[0], self.degree, self.c)

    def formula_value(self, features, target):
        return F.mmd_poly(features, target, self.degree, self.c)


@STYLE_LOSSES.register("mmd-rbf")
class GaussianMMDLoss(StyleLoss):
    name = "mmd-rbf"
    description = "MMD with the Gaussian kernel, linear time (random Fourier features)"
    formula = "‖mean φ(x) − mean φ(y)‖², φ(x)=√(2/D)cos(Wx+b), W~N(0,σ⁻²)"
    reference = "Li et al. 2017; Rahimi & Recht 2007; Gretton et al. 2012"

    def __init__(self, target: Tensor, *, num_features: int = 256, sigma: float | None = None,
                 estimator: str = "rff", generator: torch.Generator | None = None) -> None:
        if estimator not in ("rff", "linear"):
            from ..errors import UsageError

            raise UsageError(f"mmd-rbf estimator must be 'rff' or 'linear', got {estimator!r}")
        self.num_features, self.sigma, self.estimator = int(num_features), sigma, estimator
        self.generator = generator
        super().__init__(target, generator=generator)

    def prepare(self, target, generator):
        if self.sigma is None:
            self.sigma = F.rbf_bandwidth(target, generator)
        w, b = F.random_fourier_frequencies(target.shape[1], self.num_features, self.sigma, generator)
        self.register_buffer("frequencies", w.to(target), persistent=False)
        self.register_buffer("phases", b.to(target), persistent=False)

    def statistics(self, features):
        if self.estimator == "linear":
            return (F.flatten(features),)
        return (F.rff_mean_embedding(features, self.frequencies, self.phases),)

    def distance(self, stats, target_stats):
        if self.estimator == "linear":  # resampled on every call: for stochastic optimisers
            return F.mmd_rbf_linear(stats[0], target_stats[0], self.sigma, self.generator)
        return (stats[0] - target_stats[0]).pow(2).sum(-1)

    def denominator(self, features):
        """The linear-time estimate is unbiased, so it can be negative (and it is random): as a
        denominator use the random-feature estimate of the same MMD², ≥ 0 and fixed."""
        if self.estimator != "linear":
            return self(features)
        target = F.rff_mean_embedding(self.target_stats[0], self.frequencies, self.phases)  # (1, D)
        return (F.rff_mean_embedding(features, self.frequencies, self.phases) - target).pow(2).sum(-1)

    def formula_value(self, features, target):
        if self.estimator == "linear":  # a fresh random pairing on every call: no fixed value
            raise NotImplementedError("the linear-time estimator is random; compare in expectation")
        return F.mmd_rbf_rff(features, target, self.frequencies, self.phases)


@STYLE_LOSSES.register("bn-stats")
class BNStatsLoss(StyleLoss):
    name = "bn-stats"
    description = "Batch-norm statistic matching: per-channel means and stds"
    formula = "(1/C) Σ_c (μx,c − μy,c)² + (σx,c − σy,c)², σ = √(biased var + 1e-8)"
    reference = "Li et al. 2017, Demystifying Neural Style Transfer"

    def formula_value(self, features, target):
        return F.bn_stats_loss(features, target)

    def statistics(self, features):
        return F.channel_mean(features), F.channel_std(features, eps=F.BN_STATS_EPS)

    def distance(self, stats, target_stats):
        return F.bn_stats_distance(*stats, *target_stats)


def loss_options(name: str) -> tuple[str, ...]:
    """The options (``--loss-param NAME.OPTION=VALUE``) the registered loss ``name`` takes."""
    parameters = inspect.signature(STYLE_LOSSES.get(name).__init__).parameters
    return tuple(p for p, v in parameters.items() if v.kind is v.KEYWORD_ONLY and p != "generator")


def check_loss_options(name: str, options) -> None:
    """Refuse an option the loss does not have, naming the closest one and all valid ones."""
    from ..errors import UsageError

    valid = loss_options(name)
    for option in options:
        if option not in valid:
            raise UsageError(f"--loss-param {name}.{option}: {name} has no option {option!r}"
                             f"{did_you_mean(option, valid)}; "
                             f"its options: {', '.join(valid) or 'none'}")


def build_style_loss(name: str, target: Tensor, generator: torch.Generator | None = None,
                     **options) -> StyleLoss:
    """Instantiate the registered loss ``name`` for a target, with loss-specific options."""
    cls = STYLE_LOSSES.get(name)
    check_loss_options(name, options)
    try:
        return cls(target, generator=generator, **options)
    except TypeError as error:
        from ..errors import UsageError

        raise UsageError(f"bad option for style loss {name!r}: {error}") from None


def layer_losses(name: str, style_features: dict[str, Tensor], layers, generator: torch.Generator | None = None,
                 **options) -> dict[str, StyleLoss]:
    """``{layer: the loss name fixed on the style's features there}``, built in layer order from
    one generator: how the stylizer builds its terms, and so how compare measures them (a loss
    with random parameters, ``mmd-rbf``, then gets the same ones)."""
    return {layer: build_style_loss(name, style_features[layer], generator, **options) for layer in layers}
