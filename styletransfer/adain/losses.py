"""AdaIN's training losses (Huang & Belongie 2017, as pytorch-AdaIN's train.py computes them).

    t = AdaIN(relu4_1(c), μ(relu4_1(s)), σ(relu4_1(s)))          g = decoder(t)
    content = MSE(relu4_1(g), t)
    style   = Σ_{l = relu1_1 … relu4_1} MSE(μ(g_l), μ(s_l)) + MSE(σ(g_l), σ(s_l))

μ and σ are :func:`~styletransfer.adain.functional.mean_std` (unbiased variance + 1e-5).
With ``dtype=torch.bfloat16`` the encoder and decoder run under bfloat16 autocast; every feature
is cast back to float32 before a statistic or a loss, and the decoder's weights stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..encoder import VGGEncoder
from ..precision import autocast_call
from .functional import ADAIN_LAYER, ADAIN_STYLE_LAYERS, adain, mean_std


@dataclass
class AdaINLosses:
    content: Tensor  # () MSE(relu4_1(g), t)
    style: Tensor  # () Σ_l MSE(μ) + MSE(σ)
    output: Tensor  # (N, 3, H, W) the decoder output g


def statistics_loss(features: Tensor, target: Tensor) -> Tensor:
    """MSE(μ(x), μ(y)) + MSE(σ(x), σ(y)) with pytorch-AdaIN's μ, σ."""
    mean, std = mean_std(features)  # (N, C, 1, 1) each
    target_mean, target_std = mean_std(target)
    return F.mse_loss(mean, target_mean) + F.mse_loss(std, target_std)


def adain_losses(encoder: VGGEncoder, decoder: nn.Module, content: Tensor, style: Tensor, *,
                 dtype: torch.dtype = torch.float32) -> AdaINLosses:
    """The AdaIN training losses of a batch of (content, style) pairs, each (N, 3, H, W)."""
    with torch.no_grad():
        style_features = autocast_call(dtype, encoder, style, ADAIN_STYLE_LAYERS)
        content_features = autocast_call(dtype, encoder, content, (ADAIN_LAYER,))[ADAIN_LAYER]  # (N, 512, H/8, W/8)
        target = adain(content_features, *mean_std(style_features[ADAIN_LAYER]))  # (N, 512, H/8, W/8)
    output = autocast_call(dtype, decoder, target)  # (N, 3, H, W)
    output_features = autocast_call(dtype, encoder, output, ADAIN_STYLE_LAYERS)
    content_loss = F.mse_loss(output_features[ADAIN_LAYER], target)
    style_loss = sum(statistics_loss(output_features[layer], style_features[layer]) for layer in ADAIN_STYLE_LAYERS)
    return AdaINLosses(content_loss, style_loss, output)
