"""The Gram ≡ poly-MMD identity, checked on the comparison's own features.

Gatys' Gram loss is, up to the factor 1/(4C²), the squared MMD with the kernel k(x, y) = (xᵀy)²
(Li et al. 2017). The check computes both sides independently: Gatys' formula with unnormalised
Gram matrices, and the quadratic-time kernel estimator that never forms a Gram matrix.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from ..losses import functional as loss_functions
from .selection import IDENTITY_MAX_POSITIONS


def _sample_positions(features: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` random columns of a (C, M) matrix, without replacement."""
    index = torch.randperm(features.shape[-1], generator=generator)[:count].to(features.device)
    return features[:, index]  # (C, count)


def identity_ratios(x: Tensor, y: Tensor, *, max_positions: int = IDENTITY_MAX_POSITIONS,
                    generator: torch.Generator | None = None) -> dict:
    """Gram ≡ poly-MMD on one layer's features x: (1, C, H, W) and y: (1, C, H', W').

    ``ratio_kernel``: Gatys' 1/(4C²m²)·Σ(G − A)² with unnormalised Grams against the
    quadratic-time kernel MMD² (V-statistic, k = (xᵀy)²), both on the same m = min(M, M',
    max_positions) random positions per image; independent computations of the two sides.
    """
    generator = generator or torch.Generator().manual_seed(0)
    x, y = loss_functions.flatten(x), loss_functions.flatten(y)  # (1, C, M), (1, C, M')
    channels = x.shape[1]
    scale = 4 * channels**2

    def ratio(numerator: Tensor, denominator: Tensor) -> float | None:
        return float(numerator / denominator) if float(denominator) > 0 else None

    x, y = x.double(), y.double()  # the kernel estimator cancels large terms: float64
    m = min(x.shape[-1], y.shape[-1], max_positions)
    xs, ys = _sample_positions(x[0], m, generator), _sample_positions(y[0], m, generator)  # (C, m)
    gram_x, gram_y = xs @ xs.T, ys @ ys.T  # (C, C), unnormalised
    gatys = (gram_x - gram_y).pow(2).sum() / (scale * m**2)
    kernel_mmd = loss_functions.mmd_exact(xs[None], ys[None], lambda a, b: (a @ b) ** 2)[0]
    return {"channels": channels, "positions": m, "ratio_kernel": ratio(gatys, kernel_mmd / scale)}


def gram_poly_identity(content_features: Mapping[str, Tensor], style_features: Mapping[str, Tensor], *,
                       max_positions: int = IDENTITY_MAX_POSITIONS, seed: int = 0) -> dict:
    """``identity_ratios`` for every layer of ``content_features``, summarised across layers."""
    generator = torch.Generator().manual_seed(seed)
    layers = {layer: identity_ratios(content_features[layer], style_features[layer],
                                     max_positions=max_positions, generator=generator)
              for layer in content_features}
    return {**identity_summary(layers), "max_positions": max_positions}


def identity_summary(layers: Mapping[str, Mapping]) -> dict:
    """Spread (max − min) and largest |ratio − 1| of the Gram ≡ poly-MMD ratios across layers."""
    summary: dict = {"layers": {k: dict(v) for k, v in layers.items()}}
    for kind in ("kernel",):
        ratios = [v[f"ratio_{kind}"] for v in layers.values() if v.get(f"ratio_{kind}") is not None]
        summary[f"spread_{kind}"] = max(ratios) - min(ratios) if ratios else None
        summary[f"max_deviation_{kind}"] = max(abs(r - 1) for r in ratios) if ratios else None
    return summary
