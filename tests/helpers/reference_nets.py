"""Independent re-statements of the ecosystem's networks, written from REFERENCE.md.

They share no code with the package, so agreeing with them proves compatibility.
"""

from __future__ import annotations

import torch
from torch import nn


def pytorch_adain_vgg() -> nn.Sequential:
    """pytorch-AdaIN's ``net.vgg``: 53 children, 1x1 Caffe conv first, reflection padding."""

    def block(cin, cout):
        return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3)), nn.ReLU()]

    def pool():
        return [nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)]

    layers = [nn.Conv2d(3, 3, (1, 1))]
    layers += block(3, 64) + block(64, 64) + pool()
    layers += block(64, 128) + block(128, 128) + pool()
    layers += block(128, 256) + block(256, 256) + block(256, 256) + block(256, 256) + pool()
    layers += block(256, 512) + block(512, 512) + block(512, 512) + block(512, 512) + pool()
    layers += block(512, 512) + block(512, 512) + block(512, 512) + block(512, 512)
    return nn.Sequential(*layers)


def pytorch_adain_decoder() -> nn.Sequential:
    """pytorch-AdaIN's ``net.decoder``: 29 children."""

    def block(cin, cout):
        return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3)), nn.ReLU()]

    up = [nn.Upsample(scale_factor=2, mode="nearest")]
    layers = block(512, 256) + up
    layers += block(256, 256) + block(256, 256) + block(256, 256) + block(256, 128) + up
    layers += block(128, 128) + block(128, 64) + up
    layers += block(64, 64) + [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(64, 3, (3, 3))]
    return nn.Sequential(*layers)


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 1
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
    return module


def adain_mean_std(feat: torch.Tensor, eps: float = 1e-5):
    """pytorch-AdaIN's calc_mean_std: unbiased variance + eps."""
    n, c = feat.shape[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)
