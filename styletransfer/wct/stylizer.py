"""Feed-forward stylisation with WCT: one encoder pass, whitening and colouring at relu4_1, one
decoder pass (Li et al. 2017, single level, with the AdaIN decoder).

The one place WCT inference happens (``stylize --method wct``, the API). It runs the networks of
:class:`~styletransfer.adain.decoder.AdaINModel` (our decoder or pytorch-AdaIN's ``decoder.pth``)
and shares AdaIN's handling of inputs, with WCT's statistics (μ, Σ) in place of AdaIN's (μ, σ):

* ``alpha``: the decoder sees α·WCT(c, s) + (1 − α)·f(c);
* several styles with weights w_i (normalised to sum 1): WCT with μ = Σ w_i μ_i and
  Σ = Σ w_i Σ_i, the weighted average of the targets the ``mean-cov`` loss would use, so the
  decoded features have exactly those statistics. (The paper interpolates the WCT outputs
  instead, Σ w_i WCT(c, s_i), which amounts to mixing the colouring matrices Σ_i^½; the two agree
  for one style and differ little for similar styles.);
* spatial control: a mask (white = foreground) at the feature size splits the content features
  into two regions; each region is whitened with its own (μ, Σ) and coloured with its style's;
* exact output size: the content is reflect-padded to a multiple of 8 and the output cropped back;
* style statistics computed once and reused (:meth:`WCTStylizer.represent_style`);
* colour preservation from :mod:`styletransfer.color`; channels-last and bfloat16 networks as
  AdaIN runs them (:func:`~styletransfer.adain.stylizer.compute_model`); features are taken in
  float32 and their moments in float64 whatever the networks' precision.

No tiling: the whole relu4_1 map is transformed at once (32 bytes per pixel), and the statistics
are a C×C matrix per image (2 MiB at C = 512).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..adain.decoder import AdaINModel
from ..adain.stylizer import DecoderConfig, DecoderStylizer
from ..realtime import weighted_average
from .functional import WCT_EPS, apply_affine, feature_moments, wct_affine


@dataclass
class WCTConfig(DecoderConfig):
    """Every setting of a WCT run (those every encoder–decoder method has; no tiling)."""


# --- style statistics, mixing, and a mask's two regions -----------------------------------------


@dataclass(frozen=True)
class WCTStatistics:
    """Channel mean (1, C) and biased covariance (1, C, C) of a style's relu4_1 features, float64."""

    mean: Tensor
    covariance: Tensor


def mix_statistics(styles: Sequence[WCTStatistics], weights: Sequence[float] | None = None) -> WCTStatistics:
    """Σ w_i μ_i and Σ w_i Σ_i with weights normalised to sum 1 (equal when not given)."""
    return weighted_average(styles, weights)


def region_affines(features: Tensor, foreground: Tensor | None, styles: Sequence[WCTStatistics],
                   alpha: float, eps: float = WCT_EPS, smooth=None) -> list[tuple[Tensor, Tensor]]:
    """(T, b) of α·WCT + (1 − α)·identity for each region of (N, C, h, w) ``features``: one region
    (``foreground`` None) or two, where the (h, w) ``foreground`` is True and the rest, each with
    its own content moments and its own style. An empty region gets T = (1 − α)·I, b = α·μ_s.
    ``smooth`` (None: off): ``smooth("region{i}", μ, Σ)`` gives the content moments used instead
    (running averages over a clip's frames, ``--temporal``)."""
    regions = [None] if foreground is None else [foreground, ~foreground]
    affines = []
    for index, (selected, style) in enumerate(zip(regions, styles)):
        if selected is None or bool(selected.all()):
            values = features  # the same sums as without a mask, so an all-white mask changes nothing
        elif bool(selected.any()):
            values = features[:, :, selected]  # (N, C, K)
        else:
            eye = torch.eye(style.covariance.shape[-1], dtype=style.covariance.dtype, device=style.covariance.device)
            affines.append(((1 - alpha) * eye.expand_as(style.covariance), alpha * style.mean))
            continue
        moments = feature_moments(values)
        if smooth is not None:
            moments = smooth(f"region{index}", *moments)
        affines.append(wct_affine(*moments, style.mean, style.covariance, alpha, eps))
    return affines


def apply_region_affines(features: Tensor, foreground: Tensor | None,
                         affines: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """T f + b with the region's (T, b) at each position of (N, C, h, w) features."""
    if foreground is None:
        return apply_affine(features, *affines[0])
    inside, outside = (apply_affine(features, *affine) for affine in affines)  # (N, C, h, w) each
    return torch.where(foreground[None, None], inside, outside)


def masked_wct(features: Tensor, foreground: Tensor, fg: WCTStatistics, bg: WCTStatistics,
               alpha: float = 1.0) -> Tensor:
    """WCT per region: positions where ``foreground`` (h, w) is True are whitened with their own
    statistics and coloured with ``fg``, the rest likewise with ``bg``."""
    return apply_region_affines(features, foreground, region_affines(features, foreground, (fg, bg), alpha))


# --- the stylizer -------------------------------------------------------------------------------


class WCTStylizer(DecoderStylizer):
    """One encoder–decoder pair with one config, ready to stylise many content images with WCT."""

    label = "WCT"
    representation_type = WCTStatistics

    def __init__(self, model: AdaINModel, config: WCTConfig | None = None, *,
                 device: torch.device | str = "cpu", decoder_info: dict | None = None) -> None:
        super().__init__(model, config or WCTConfig(), device=device, decoder_info=decoder_info)

    def _statistics(self, prepared_style: Tensor) -> WCTStatistics:
        return WCTStatistics(*feature_moments(self._encode(prepared_style.unsqueeze(0))))  # (1, C), (1, C, C)

    def _transform(self, padded, foreground, region_styles):
        """Whitening and colouring (one (T, b) per region) of the whole relu4_1 map, then the decoder."""
        features = self._encode(padded)  # (1, C, H'/8, W'/8)
        target = self._regions_target(features, foreground, region_styles)
        return self.network.decoder(self._network_input(target)).float()  # (1, 3, H', W')

    def _target(self, features: Tensor, style: WCTStatistics) -> Tensor:
        return self._regions_target(features, None, [style])

    def _regions_target(self, features: Tensor, foreground: Tensor | None, region_styles) -> Tensor:
        affines = region_affines(features, foreground, region_styles, self.config.alpha, smooth=self.smooth_moments)
        return apply_region_affines(features, foreground, affines)

    def _encode(self, image: Tensor) -> Tensor:
        """relu4_1 features of a (1, 3, H, W) image, in float32 whatever the networks' dtype."""
        return self.network.encode(self._network_input(image)).float()
