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

from ..errors import UsageError
from ..registry import Registry, did_you_mean
from . import functional

STYLE_LOSSES: Registry[type["StyleLoss"]] = Registry("style loss")
EXACT_MMD_MAX_BYTES = 4 * 2**30  # refuse a quadratic-time estimator whose kernel values need more
MRF_MAX_PAIRS = 2**28  # refuse mrf beyond this many (patch, style patch) pairs: relu3_1 of a 512² image


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
    randomized: ClassVar[bool] = False  # random parameters (features, directions): measure with independent draws
    cost: ClassVar[str] = "linear"  # in the positions; "quadratic": every position against every style position

    @property
    def redraws(self) -> bool:
        """Whether every call draws new random parameters, so that the same features get a
        different value at each call (a line search cannot compare such values)."""
        return False

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

    @classmethod
    def same_objective_as(cls, **options) -> str | None:
        """The registered loss this one equals up to a constant factor with these options (so the
        stylizer's normalisation makes the two objectives identical), or None."""
        return None

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
        return functional.gram_loss(features, target)

    def statistics(self, features):
        return (functional.gram_matrix(features),)

    def distance(self, stats, target_stats):
        return functional.gram_distance(stats[0], target_stats[0])


@STYLE_LOSSES.register("mmd-linear")
class LinearMMDLoss(StyleLoss):
    name = "mmd-linear"
    description = "MMD with the linear kernel: matches channel means"
    formula = "‖μx − μy‖²"
    reference = "Li et al. 2017, Demystifying Neural Style Transfer"

    def formula_value(self, features, target):
        return functional.mmd_linear(features, target)

    def statistics(self, features):
        return (functional.channel_mean(features),)

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
        self.degree, self.c = _positive_int(self.name, "degree", degree), float(c)
        super().__init__(target, generator=generator)

    @classmethod
    def same_objective_as(cls, *, degree: int = 2, c: float = 0.0, **_) -> str | None:
        """d = 2, c = 0: 4C² · gram (Li et al. 2017), so the normalised objectives are identical."""
        return "gram" if float(degree) == 2 and float(c) == 0 else None

    def statistics(self, features):
        if self.degree == 2:
            return functional.gram_matrix(features), functional.channel_mean(features)
        flat = functional.flatten(features)  # (N, C, M): other degrees need the samples themselves, O(M²)
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
            return functional.mmd_poly2_distance(stats[0], stats[1], target_stats[0], target_stats[1], self.c)
        return functional.mmd_poly(stats[0], target_stats[0], self.degree, self.c)

    def formula_value(self, features, target):
        return functional.mmd_poly(features, target, self.degree, self.c)


@STYLE_LOSSES.register("mmd-rbf")
class GaussianMMDLoss(StyleLoss):
    name = "mmd-rbf"
    description = "MMD with the Gaussian kernel, linear time (random Fourier features)"
    formula = "‖mean φ(x) − mean φ(y)‖², φ(x)=√(2/D)cos(Wx+b), W~N(0,σ⁻²)"
    reference = "Li et al. 2017; Rahimi & Recht 2007; Gretton et al. 2012"
    randomized = True

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
            self.sigma = functional.rbf_bandwidth(target, generator)
        w, b = functional.random_fourier_frequencies(target.shape[1], self.num_features, self.sigma, generator)
        self.register_buffer("frequencies", w.to(target), persistent=False)
        self.register_buffer("phases", b.to(target), persistent=False)

    def statistics(self, features):
        if self.estimator == "linear":
            return (functional.flatten(features),)
        return (functional.rff_mean_embedding(features, self.frequencies, self.phases),)

    def distance(self, stats, target_stats):
        if self.estimator == "linear":  # resampled on every call: for stochastic optimisers
            return functional.mmd_rbf_linear(stats[0], target_stats[0], self.sigma, self.generator)
        return (stats[0] - target_stats[0]).pow(2).sum(-1)

    @property
    def redraws(self) -> bool:
        return self.estimator == "linear"  # random features are drawn once; linear-time pairings every call

    def denominator(self, features):
        """The linear-time estimate is unbiased, so it can be negative (and it is random): as a
        denominator use the random-feature estimate of the same MMD², ≥ 0 and fixed."""
        if self.estimator != "linear":
            return self(features)
        target = functional.rff_mean_embedding(self.target_stats[0], self.frequencies, self.phases)  # (1, D)
        return (functional.rff_mean_embedding(features, self.frequencies, self.phases) - target).pow(2).sum(-1)

    def formula_value(self, features, target):
        if self.estimator == "linear":  # a fresh random pairing on every call: no fixed value
            raise NotImplementedError("the linear-time estimator is random; compare in expectation")
        return functional.mmd_rbf_rff(features, target, self.frequencies, self.phases)


@STYLE_LOSSES.register("bn-stats")
class BNStatsLoss(StyleLoss):
    name = "bn-stats"
    description = "Batch-norm statistic matching: per-channel means and stds"
    formula = "(1/C) Σ_c (μx,c − μy,c)² + (σx,c − σy,c)², σ = √(biased var + 1e-8)"
    reference = "Li et al. 2017, Demystifying Neural Style Transfer"

    def formula_value(self, features, target):
        return functional.bn_stats_loss(features, target)

    def statistics(self, features):
        return functional.channel_mean(features), functional.channel_std(features, eps=functional.BN_STATS_EPS)

    def distance(self, stats, target_stats):
        return functional.bn_stats_distance(*stats, *target_stats)



def _positive_int(loss: str, option: str, value) -> int:
    """``value`` as a whole number ≥ 1, or a UsageError naming the option (mmd-poly's degree,
    sliced-wasserstein's directions, mrf's patch size and stride)."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        from ..errors import UsageError

        raise UsageError(f"{loss} {option} must be a positive whole number, got {value!r}")
    return int(value)


@STYLE_LOSSES.register("mean-cov")
class MeanCovLoss(StyleLoss):
    name = "mean-cov"
    description = "Means and covariances: Gaussian 2-Wasserstein (Bures) distance, or CORAL"
    formula = ("bures: (1/C)[‖μx − μy‖² + tr(Σx + Σy − 2(Σy^½ Σx Σy^½)^½)]; "
               "coral: (1/C)‖μx − μy‖² + ‖Σx − Σy‖²_F/(4C²); Σ = (F − μ)(F − μ)ᵀ/M")
    reference = ("Gaussian W2: Dowson & Landau 1982, Givens & Shortt 1984; Mroueh 2020 (AISTATS), "
                 "Wasserstein Style Transfer; CORAL: Sun & Saenko 2016")

    def __init__(self, target: Tensor, *, form: str = "bures", generator: torch.Generator | None = None) -> None:
        if form not in functional.MEAN_COV_FORMS:
            from ..errors import UsageError

            raise UsageError(f"mean-cov form must be one of {', '.join(functional.MEAN_COV_FORMS)}, got {form!r}"
                             f"{did_you_mean(str(form), functional.MEAN_COV_FORMS)}")
        self.form = form
        super().__init__(target, generator=generator)

    def prepare(self, target, generator):
        if self.form == "bures":  # Σy^½ once, in float64
            root = functional.sqrtm_psd(functional.channel_covariance(target).double())
            self.register_buffer("target_root", root, persistent=False)

    def statistics(self, features):
        return functional.channel_mean(features), functional.channel_covariance(features)

    def distance(self, stats, target_stats):
        if self.form == "bures":
            return functional.bures_distance(*stats, *target_stats, root_y=self.target_root)
        return functional.coral_distance(*stats, *target_stats)

    def formula_value(self, features, target):
        return functional.mean_cov_loss(features, target, self.form)


@STYLE_LOSSES.register("sliced-wasserstein")
class SlicedWassersteinLoss(StyleLoss):
    """Random directions: the first call uses the set drawn at construction (``fixed_directions``,
    also the fixed set ``denominator`` uses), every later call draws a new set from the generator
    the module was built with (torch's global one when None). ``last_directions`` is the set the
    latest call used, so ``formula_value`` recomputes that call's value."""

    name = "sliced-wasserstein"
    description = "Sliced Wasserstein: sorted 1-D projections on random directions, redrawn each call"
    formula = ("(1/(K·M)) Σ_k Σ_i (sort(v_kᵀX)_i − sort(v_kᵀY) at quantile (i+½)/M)², "
               "v_k random unit vectors, K = C by default")
    reference = "Heitz, Vanhoey, Chambon, Belcour 2021 (CVPR), A Sliced Wasserstein Loss for Neural Texture Synthesis"
    randomized = True

    def __init__(self, target: Tensor, *, directions: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.directions = None if directions is None else _positive_int(self.name, "directions", directions)
        self.generator = generator
        self._calls = 0
        super().__init__(target, generator=generator)

    def prepare(self, target, generator):
        channels = target.shape[1]
        self.count = self.directions or channels  # K = C: Heitz et al.'s choice per layer
        self.register_buffer("fixed_directions", functional.random_directions(channels, self.count, generator).to(target),
                             persistent=False)
        self.last_directions = self.fixed_directions

    redraws = True  # new directions at every call after the first

    def statistics(self, features):
        return (functional.flatten(features),)  # (N, C, M): every call projects the target on new directions

    def distance(self, stats, target_stats):
        if self._calls:
            self.last_directions = functional.random_directions(stats[0].shape[1], self.count, self.generator)
        else:
            self.last_directions = self.fixed_directions
        self._calls += 1
        return functional.sliced_wasserstein(stats[0], target_stats[0], self.last_directions)

    def denominator(self, features):
        """On the directions fixed at construction: deterministic and ≥ 0."""
        return functional.sliced_wasserstein(features, self.target_stats[0], self.fixed_directions)

    def formula_value(self, features, target):
        return functional.sliced_wasserstein(features, target, self.last_directions)


@STYLE_LOSSES.register("mrf")
class MRFLoss(StyleLoss):
    name = "mrf"
    description = "MRF: each k×k patch against its nearest style patch by normalised cross-correlation"
    formula = ("(1/(P·C·k²)) Σ_i ‖Ψ_i(x) − Ψ_NN(i)(s)‖², NN(i) = argmax_j cos(Ψ_i(x), Ψ_j(s)), "
               "k = 3 (smaller on maps smaller than k)")
    reference = "Li & Wand 2016 (CVPR), Combining Markov Random Fields and CNNs for Image Synthesis"
    cost = "quadratic"

    def __init__(self, target: Tensor, *, patch_size: int = 3, stride: int = 1,
                 generator: torch.Generator | None = None) -> None:
        self.patch_size = _positive_int(self.name, "patch_size", patch_size)
        self.stride = _positive_int(self.name, "stride", stride)
        self.chunk = functional.MRF_CHUNK  # patches per block of the matching
        super().__init__(target, generator=generator)

    def prepare(self, target, generator):
        self.style_patch_size = functional.mrf_patch_size(self.patch_size, target.shape)
        patches = functional.extract_patches(target, self.style_patch_size, self.stride)  # (1, C·k², Q)
        self.register_buffer("style_patches", patches, persistent=False)
        self.register_buffer("style_unit", functional.unit_patches(patches), persistent=False)

    def statistics(self, features):
        return (features,)  # (N, C, H, W); the target's patches are cached by prepare

    def distance(self, stats, target_stats):
        x, y = stats[0], target_stats[0]
        k = functional.mrf_patch_size(self.patch_size, x.shape, y.shape)
        if k == self.style_patch_size:
            style_patches, style_unit = self.style_patches, self.style_unit
        else:  # a map smaller than the style's patches: both sides use the largest patch that fits
            style_patches = functional.extract_patches(y, k, self.stride)
            style_unit = functional.unit_patches(style_patches)
        patches = functional.extract_patches(x, k, self.stride)  # (N, C·k², P)
        pairs = patches.shape[-1] * style_patches.shape[-1]
        if pairs > MRF_MAX_PAIRS:
            raise TooManyPatchPairs(f"mrf compares every patch with every style patch: {patches.shape[-1]} × "
                                    f"{style_patches.shape[-1]} = {pairs:.2g} pairs at a {x.shape[-2]}x{x.shape[-1]} "
                                    f"map, more than {MRF_MAX_PAIRS:.2g}")
        return functional.mrf_distance(patches, style_patches, style_unit, self.chunk)

    def formula_value(self, features, target):
        return functional.mrf_loss(features, target, self.patch_size, self.stride, self.chunk)


class TooManyPatchPairs(UsageError):
    """mrf at a layer with too many positions. The message names a generic remedy; the stylizer,
    which knows the encoder, replaces it with that encoder's layer names (``what`` is the finding)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}; use deeper --style-layers, a smaller --size, or --loss-param mrf.stride=2")
        self.what = what


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
