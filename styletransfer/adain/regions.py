"""AdaIN's style statistics and regions: mixing several styles, and a mask's two regions.

AdaIN followed by the α blend is a per-channel affine map of the content features
(:func:`~styletransfer.adain.functional.adain_affine`). With a mask (white = foreground) at the
feature size the content features form two regions; each is normalised with its own statistics
and gets its own style. Region moments are accumulated tile by tile (:mod:`styletransfer.tiling`),
so the same code serves whole images and tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..realtime import pad_to_multiple, weighted_average
from ..tiling import FEATURE_STRIDE, ChannelMoments
from .functional import ADAIN_EPS, adain_affine

MASK_THRESHOLD = 0.5  # a feature cell is foreground when at least half its pixels are white
MIN_REGION = 2  # positions needed for an unbiased variance


@dataclass(frozen=True)
class StyleStatistics:
    """Channel mean and std of a style's relu4_1 features, each (1, C, 1, 1)."""

    mean: Tensor
    std: Tensor


def mix_statistics(styles: Sequence[StyleStatistics], weights: Sequence[float] | None = None) -> StyleStatistics:
    """Σ w_i μ_i and Σ w_i σ_i with weights normalised to sum 1 (equal when not given)."""
    return weighted_average(styles, weights)


def accumulate(moments: Sequence[ChannelMoments], features: Tensor, foreground: Tensor | None) -> None:
    """Add (N, C, h, w) features to their regions' moments: one region (``foreground`` None),
    or two, the positions where the (h, w) ``foreground`` is True and the rest."""
    if foreground is None:
        moments[0].add(features)
        return
    for region_moments, selected in zip(moments, (foreground, ~foreground)):
        if bool(selected.all()):
            region_moments.add(features)
        elif bool(selected.any()):
            region_moments.add(features[:, :, selected])  # (N, C, K)


def region_affines(moments: Sequence[ChannelMoments], styles: Sequence[StyleStatistics],
                   alpha: float, smooth=None) -> list[tuple[Tensor, Tensor]]:
    """(scale, shift) of α·AdaIN + (1 − α)·identity for each region, from its content moments.

    A region of one position (or none) has no variance: its normalised value is taken as 0, so
    AdaIN gives the style mean there. ``smooth`` (None: off): ``smooth("region{i}", μ, σ)`` gives
    the content statistics used instead (running averages over a clip's frames, ``--temporal``).
    """
    affines = []
    for index, (region_moments, style) in enumerate(zip(moments, styles)):
        if region_moments.count >= MIN_REGION:
            mean, std = region_moments.mean_std(ADAIN_EPS)  # (N, C, 1, 1) each
            if smooth is not None:
                mean, std = smooth(f"region{index}", mean, std)
            affines.append(adain_affine(mean, std, style.mean, style.std, alpha))
        else:
            affines.append((torch.full_like(style.std, 1 - alpha), alpha * style.mean))
    return affines


def apply_affines(features: Tensor, foreground: Tensor | None, affines: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """features·scale + shift, with the region's (scale, shift) at each position."""
    if foreground is None:
        scale, shift = affines[0]
    else:
        where = foreground[None, None]  # (1, 1, h, w)
        scale = torch.where(where, affines[0][0], affines[1][0])  # (N, C, h, w)
        shift = torch.where(where, affines[0][1], affines[1][1])
    return features * scale + shift


def masked_adain(features: Tensor, foreground: Tensor, fg: StyleStatistics, bg: StyleStatistics) -> Tensor:
    """AdaIN per region: positions where ``foreground`` (h, w) is True get ``fg``, the rest ``bg``.

    Each region is normalised with its own channel statistics, so an all-True mask gives
    ``adain(features, fg.mean, fg.std)`` (up to rounding).
    """
    moments = [ChannelMoments(), ChannelMoments()]
    accumulate(moments, features, foreground)
    return apply_affines(features, foreground, region_affines(moments, (fg, bg), 1.0))


def feature_mask(mask: Tensor, feature_size: tuple[int, int]) -> Tensor:
    """A (1, H, W) mask in [0, 1] at the content's size → (h, w) booleans at the feature size."""
    padded = pad_to_multiple(mask.unsqueeze(0), FEATURE_STRIDE)  # (1, 1, H', W')
    cells = F.interpolate(padded, size=tuple(feature_size), mode="area")  # (1, 1, h, w)
    return cells[0, 0] >= MASK_THRESHOLD
