"""Style losses as thin modules over ``functional``: each caches its target's statistics once.

Every class is registered under the name the CLI's ``--loss`` takes. A module is built from
the style image's features at one layer; calling it on generated features returns the loss
per batch item, shape ``(N,)``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ..registry import Registry
from . import functional as F

STYLE_LOSSES: Registry[type["StyleLoss"]] = Registry("style loss")


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


@STYLE_LOSSES.register("gram")
class GramLoss(StyleLoss):
    name = "gram"
    description = "Gatys et al.: squared distance of Gram matrices"
    formula = "1/(4C²) ‖G/M − A/M'‖²_F"
    reference = "Gatys, Ecker, Bethge 2016 (CVPR)"

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
        self.degree, self.c = int(degree), float(c)
        if self.degree < 1:
            from ..errors import UsageError

            raise UsageError(f"mmd-poly degree must be a positive whole number, got {degree}")
        super().__init__(target, generator=generator)

    def statistics(self, features):
        if self.degree == 2:
            return F.gram_matrix(features), F.channel_mean(features)
        return (F.flatten(features),)  # other degrees need the samples themselves: O(M²)

    def distance(self, stats, target_stats):
        if self.degree == 2:
            return F.mmd_poly2_distance(stats[0], stats[1], target_stats[0], target_stats[1], self.c)
        return F.mmd_poly(stats[0], target_stats[0], self.degree, self.c)


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


@STYLE_LOSSES.register("bn-stats")
class BNStatsLoss(StyleLoss):
    name = "bn-stats"
    description = "Batch-norm statistic matching: per-channel means and stds"
    formula = "(1/C) Σ_c (μx,c − μy,c)² + (σx,c − σy,c)², σ = √(biased var + 1e-8)"
    reference = "Li et al. 2017, Demystifying Neural Style Transfer"

    def statistics(self, features):
        return F.channel_mean(features), F.channel_std(features, eps=F.BN_STATS_EPS)

    def distance(self, stats, target_stats):
        return F.bn_stats_distance(*stats, *target_stats)


def build_style_loss(name: str, target: Tensor, generator: torch.Generator | None = None,
                     **options) -> StyleLoss:
    """Instantiate the registered loss ``name`` for a target, with loss-specific options."""
    cls = STYLE_LOSSES.get(name)
    try:
        return cls(target, generator=generator, **options)
    except TypeError as error:
        from ..errors import UsageError

        raise UsageError(f"bad option for style loss {name!r}: {error}") from None
