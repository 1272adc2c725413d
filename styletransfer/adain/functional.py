"""AdaIN's formulas (Huang & Belongie 2017) as pure tensor functions.

AdaIN(x, y) = σ(y)·(x − μ(x))/σ(x) + μ(y), per instance and channel, with μ and σ as
pytorch-AdaIN computes them (unbiased variance + 1e-5), built on the channel statistics the
style losses use (:mod:`styletransfer.losses.functional`).
"""

from __future__ import annotations

from torch import Tensor

from ..losses.functional import channel_mean, channel_std

ADAIN_LAYER = "relu4_1"
ADAIN_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
ADAIN_EPS = 1e-5


def mean_std(features: Tensor, eps: float = ADAIN_EPS) -> tuple[Tensor, Tensor]:
    """Per-instance channel mean and std as pytorch-AdaIN computes them: unbiased var + eps.

    Returns two (N, C, 1, 1) tensors.
    """
    n, c = features.shape[:2]
    mean = channel_mean(features)  # (N, C)
    std = channel_std(features, unbiased=True, eps=eps)  # (N, C)
    return mean.view(n, c, 1, 1), std.view(n, c, 1, 1)


def adain(content: Tensor, style_mean: Tensor, style_std: Tensor, eps: float = ADAIN_EPS) -> Tensor:
    """AdaIN(x, y) = σ(y)·(x − μ(x))/σ(x) + μ(y), per instance and channel."""
    mean, std = mean_std(content, eps)
    return (content - mean) / std * style_std + style_mean


def adain_affine(content_mean: Tensor, content_std: Tensor, style_mean: Tensor, style_std: Tensor,
                 alpha: float = 1.0) -> tuple[Tensor, Tensor]:
    """AdaIN blended with the content, α·AdaIN(x) + (1 − α)·x, as a per-channel affine map.

    Returns (scale, shift) with x·scale + shift equal to it: scale = α·σ(y)/σ(x) + 1 − α and
    shift = α·(μ(y) − μ(x)·σ(y)/σ(x)). Statistics broadcast like (N, C, 1, 1).
    """
    ratio = style_std / content_std
    return alpha * ratio + (1 - alpha), alpha * (style_mean - content_mean * ratio)
