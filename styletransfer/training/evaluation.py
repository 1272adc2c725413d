"""Held-out evaluation of an AdaIN decoder: its training losses averaged over image pairs."""

from __future__ import annotations

import itertools
from typing import Sequence

import torch
from torch import Tensor, nn

from ..adain.losses import adain_losses
from ..devices import resolve_device
from ..encoder import VGGEncoder
from ..errors import UsageError
from .config import DEFAULT_BATCH_SIZE, DEFAULT_CONTENT_WEIGHT, DEFAULT_CROP_SIZE, DEFAULT_STYLE_WEIGHT


def evaluate_decoder(decoder: nn.Module, encoder: VGGEncoder, contents: Sequence[Tensor | str],
                     styles: Sequence[Tensor | str], *, size: int = DEFAULT_CROP_SIZE,
                     content_weight: float = DEFAULT_CONTENT_WEIGHT, style_weight: float = DEFAULT_STYLE_WEIGHT,
                     batch_size: int = DEFAULT_BATCH_SIZE, device: str | torch.device = "cpu") -> dict:
    """Held-out losses: the mean over every (content, style) pair, images resized to size².

    Images are (3, H, W) tensors in [0, 1] or paths. The decoder runs in evaluation mode (batch
    norm uses its running statistics) and is returned to the mode it was in.
    """
    from ..imageio import load_image, resize_to

    if not contents or not styles:
        raise UsageError("evaluate_decoder needs at least one content and one style image")

    def prepare(images: Sequence[Tensor | str]) -> Tensor:
        loaded = [load_image(i) if not isinstance(i, Tensor) else i for i in images]
        return torch.stack([resize_to(image, size, size) for image in loaded])  # (n, 3, size, size)

    device = resolve_device(device)
    content_batch, style_batch = prepare(contents).to(device), prepare(styles).to(device)
    pairs = list(itertools.product(range(len(content_batch)), range(len(style_batch))))
    encoder, was_training = encoder.to(device), decoder.training
    decoder.to(device).eval()
    sums = {"content": 0.0, "style": 0.0}
    try:
        with torch.no_grad():
            for first in range(0, len(pairs), batch_size):
                chunk = pairs[first:first + batch_size]
                content = content_batch[[c for c, _ in chunk]]  # (b, 3, size, size)
                style = style_batch[[s for _, s in chunk]]  # (b, 3, size, size)
                losses = adain_losses(encoder, decoder, content, style)
                # The style loss is a sum of per-pair means, the content loss a mean: both scale with b.
                sums["content"] += float(losses.content) * len(chunk)
                sums["style"] += float(losses.style) * len(chunk)
    finally:
        decoder.train(was_training)
    content_loss, style_loss = sums["content"] / len(pairs), sums["style"] / len(pairs)
    return {"content": content_loss, "style": style_loss,
            "total": content_weight * content_loss + style_weight * style_loss, "pairs": len(pairs)}
