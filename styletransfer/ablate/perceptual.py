"""The perceptual loss of feed-forward stylisation (Johnson et al. 2016), scale-free.

    content(x, c) = ‖F_l(x) − F_l(c)‖² / ‖F_l(c)‖²                     at one content layer l
    style(x)      = mean over style layers of ‖G(x)/M − A/M'‖²_F / ‖A/M'‖²_F

Both terms are relative (the Gram distance is ``styletransfer.losses``' ``gram`` loss divided by
its value for an all-zero feature map), so their sizes do not depend on the encoder's weight
scale, and the same weights work for random and trained encoders.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..encoder import Encoder, VGGEncoder
from ..losses import build_style_loss
from ..losses import functional as loss_functions
from ..optimize import MIN_REFERENCE as TINY  # the one floor of a normalising denominator

CONTENT_LAYER = VGGEncoder.perceptual_content_layer
STYLE_LAYERS = VGGEncoder.perceptual_style_layers


class PerceptualLoss(nn.Module):
    """Relative content and Gram style terms for a batch, each of shape (N,)."""

    def __init__(self, encoder: Encoder, style: Tensor, *, content_layer: str = CONTENT_LAYER,
                 style_layers: tuple[str, ...] = STYLE_LAYERS) -> None:
        super().__init__()
        self.encoder, self.content_layer, self.style_layers = encoder, content_layer, tuple(style_layers)
        with torch.no_grad():
            targets = encoder(style.unsqueeze(0) if style.dim() == 3 else style, self.style_layers)
            self.style_losses = nn.ModuleDict({l: build_style_loss("gram", targets[l]) for l in self.style_layers})
            self.style_scale = {
                l: 1.0 / max(float(self.style_losses[l](torch.zeros_like(targets[l]))), TINY) for l in self.style_layers
            }

    def forward(self, output: Tensor, content: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            target = self.encoder(content, [self.content_layer])[self.content_layer]  # (N, C, h, w)
        features = self.encoder(output, [self.content_layer, *self.style_layers])
        content_term = loss_functions.content_loss(features[self.content_layer], target) / loss_functions.content_loss(
            target, torch.zeros_like(target)).clamp_min(TINY)  # (N,)
        style_term = torch.stack([self.style_losses[l](features[l]) * self.style_scale[l]
                                  for l in self.style_layers]).mean(0)  # (N,)
        return content_term, style_term
