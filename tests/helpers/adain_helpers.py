"""Small seeded AdaIN networks and files for the feed-forward tests (no downloads)."""

from __future__ import annotations

import torch
from torch import nn

from styletransfer.adain import Decoder
from tests.helpers.reference_nets import pytorch_adain_vgg, randomize_

OUTPUT_MEAN, OUTPUT_STD = 0.5, 0.25  # calibrated decoders put most pixels inside (0, 1)
ADAIN_ENCODER_CHILDREN = 31  # pytorch-AdaIN's vgg[:31] ends at relu4_1


def calibrate_(decoder: nn.Sequential, features: torch.Tensor) -> nn.Sequential:
    """Rescale the last conv so each output channel on ``features`` has mean 0.5 and std 0.25.

    A random decoder's raw output is far outside [0, 1] and would clip, which would make image
    comparisons meaningless; this is an affine change of the last layer only.
    """
    last = decoder[-1]
    with torch.no_grad():
        out = decoder(features)  # (N, 3, H, W)
        mean, std = out.mean(dim=(0, 2, 3)), out.std(dim=(0, 2, 3))  # (3,) each
        gain = OUTPUT_STD / std
        last.weight.mul_(gain.view(3, 1, 1, 1))
        last.bias.mul_(gain).add_(OUTPUT_MEAN - gain * mean)
    return decoder


def seeded_decoder(seed: int, features: torch.Tensor, norm: str = "none") -> Decoder:
    """Our ``Decoder`` with seeded variance-preserving random weights, calibrated on ``features``."""
    return calibrate_(randomize_(Decoder(norm), seed), features).eval()


ODD = (27, 37)  # (H, W), neither a multiple of 8 (the CLI tests use 45x67)


def calibrated_model(encoder, transform):
    """``encoder`` with a seeded decoder calibrated on the targets the method decodes: the content's
    relu4_1 features and ``transform(features, style_features)`` for two styles."""
    from styletransfer.adain import AdaINModel

    generator = torch.Generator().manual_seed(0)
    content, style_a, style_b = (torch.rand(1, 3, 24, 32, generator=generator) for _ in range(3))
    with torch.no_grad():
        features = encoder(content, ["relu4_1"])["relu4_1"]
        targets = [features] + [transform(features, encoder(s, ["relu4_1"])["relu4_1"])
                                for s in (style_a ** 2, 1 - style_b ** 3)]
    return AdaINModel(encoder, seeded_decoder(0, torch.cat(targets))).eval()


def odd_images(rng: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A content of size ODD and two styles of other sizes, (3, H, W) each."""
    content = torch.rand(3, *ODD, generator=rng)
    styles = [torch.rand(3, 24, 30, generator=rng) ** 2, 1 - torch.rand(3, 28, 20, generator=rng) ** 3]
    return content, styles


def pytorch_adain_encoder(seed: int, children: int | None = None) -> nn.Sequential:
    """pytorch-AdaIN's vgg (all 53 children, or the first ``children``) with random weights."""
    vgg = pytorch_adain_vgg()
    if children is not None:
        vgg = nn.Sequential(*list(vgg.children())[:children])
    return randomize_(vgg, seed).eval()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1] (inf when equal)."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()
