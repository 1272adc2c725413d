"""AdaIN's training losses (Huang & Belongie 2017, as pytorch-AdaIN's train.py computes them).

    t = AdaIN(relu4_1(c), μ(relu4_1(s)), σ(relu4_1(s)))          g = decoder(t)
    content = MSE(relu4_1(g), t)
    style   = Σ_{l = relu1_1 … relu4_1} MSE(μ(g_l), μ(s_l)) + MSE(σ(g_l), σ(s_l))

μ and σ are :func:`~styletransfer.adain.functional.mean_std` (unbiased variance + 1e-5).

With ``layer_weights`` the style sum weighs each layer (``style_balance``: the original VGG19 is
not normalised, so relu4_1's terms are hundreds of times relu1_1's and the colours, carried by
the shallow layers, go unmatched; see docs/TRAINING.md).

The reconstruction objective (Li et al. 2017, how WCT's decoders are trained) makes the decoder
invert the encoder, with no style and no AdaIN:

    t = relu4_1(c)      g = decoder(t)      pixel = MSE(g, c)      content = MSE(relu4_1(g), t)

The pixel term needs no encoder pass over g, so a pixel-only step costs about half an AdaIN step;
it is a fast start for an AdaIN decoder (``train --objective reconstruction``, then ``--init``).
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
    pixel: Tensor | None = None  # () MSE(g, c) (reconstruction) or the identity loss (adain)


def statistics_loss(features: Tensor, target: Tensor) -> Tensor:
    """MSE(μ(x), μ(y)) + MSE(σ(x), σ(y)) with pytorch-AdaIN's μ, σ."""
    mean, std = mean_std(features)  # (N, C, 1, 1) each
    target_mean, target_std = mean_std(target)
    return F.mse_loss(mean, target_mean) + F.mse_loss(std, target_std)


def style_balance(encoder: VGGEncoder, style: Tensor, layers: tuple[str, ...] = ADAIN_STYLE_LAYERS) -> dict[str, float]:
    """Layer weights that bring every style layer to relu4_1's scale: w_l = ms(relu4_1) / ms(l),
    ms the mean squared activation of ``style`` images (N, 3, H, W), so relu4_1's weight is 1."""
    with torch.no_grad():
        features = encoder(style, layers)
    squares = {layer: float(features[layer].double().pow(2).mean()) for layer in layers}
    return {layer: squares[ADAIN_LAYER] / squares[layer] for layer in layers}


def adain_losses(encoder: VGGEncoder, decoder: nn.Module, content: Tensor, style: Tensor, *,
                 dtype: torch.dtype = torch.float32, layer_weights: dict[str, float] | None = None,
                 identity: bool = False) -> AdaINLosses:
    """The AdaIN training losses of a batch of (content, style) pairs, each (N, 3, H, W).

    With ``identity`` also the identity loss ``pixel`` = MSE(decoder(relu4_1(c)), c) (Park & Lee
    2019's λ_id1 term: AdaIN of a content with itself is its own features, which the decoder must
    give back); both decoder passes run as one batch."""
    with torch.no_grad():
        style_features = autocast_call(dtype, encoder, style, ADAIN_STYLE_LAYERS)
        content_features = autocast_call(dtype, encoder, content, (ADAIN_LAYER,))[ADAIN_LAYER]  # (N, 512, H/8, W/8)
        target = adain(content_features, *mean_std(style_features[ADAIN_LAYER]))  # (N, 512, H/8, W/8)
    decoded = autocast_call(dtype, decoder, torch.cat([target, content_features]) if identity else target)
    output = decoded[:len(target)]  # (N, 3, H, W)
    output_features = autocast_call(dtype, encoder, output, ADAIN_STYLE_LAYERS)
    content_loss = F.mse_loss(output_features[ADAIN_LAYER], target)
    weights = layer_weights or {}
    style_loss = sum(weights.get(layer, 1.0) * statistics_loss(output_features[layer], style_features[layer])
                     for layer in ADAIN_STYLE_LAYERS)
    pixel = F.mse_loss(decoded[len(target):], content) if identity else None
    return AdaINLosses(content_loss, style_loss, output, pixel)


def reconstruction_losses(encoder: VGGEncoder, decoder: nn.Module, content: Tensor, *, features: bool = True,
                          dtype: torch.dtype = torch.float32) -> AdaINLosses:
    """The decoder's reconstruction losses of a batch of content images (N, 3, H, W): pixel
    MSE(g, c) and, when ``features``, content MSE(relu4_1(g), relu4_1(c)) (else 0, and no encoder
    pass over g). The style loss is 0."""
    with torch.no_grad():
        target = autocast_call(dtype, encoder, content, (ADAIN_LAYER,))[ADAIN_LAYER]  # (N, 512, H/8, W/8)
    output = autocast_call(dtype, decoder, target)  # (N, 3, H, W)
    zero = output.new_zeros(())
    content_loss = (F.mse_loss(autocast_call(dtype, encoder, output, (ADAIN_LAYER,))[ADAIN_LAYER], target)
                    if features else zero)
    return AdaINLosses(content_loss, zero, output, F.mse_loss(output, content))
