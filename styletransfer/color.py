"""Colour preservation: keep the content image's colours while taking the style's texture.

Each method is a pure function ``(image, content) -> image`` on RGB tensors in [0, 1] of shape
(3, H, W) or (N, 3, H, W), registered with the stage at which it applies:

* ``coral`` (stage ``style``): the style image is transformed so that its colour mean and
  covariance match the content's, before stylising (pytorch-AdaIN's ``--preserve_color``).
* ``histogram`` (stage ``style``): each channel of the style image is matched to the content's
  histogram, before stylising.
* ``luminance`` (stage ``output``): the result keeps the content's chrominance (YIQ's I and Q)
  and takes only its luminance Y from the stylised output, after stylising (neural-style's
  ``-original_colors``).

The functions do not clip: CORAL and the YIQ round trip may leave [0, 1] slightly. The
encoder accepts such values, and writing an image clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from .registry import Registry

NONE = "none"
STAGE_STYLE = "style"  # applied to each style image (after resizing), before stylising
STAGE_OUTPUT = "output"  # applied to the stylised output, after stylising
# pytorch-AdaIN adds the identity to the scatter matrix of the standardised colours
# (a regulariser of relative size 1/(H·W)); keeping it makes our CORAL equal to theirs
# for images with equal pixel counts.
CORAL_REGULARIZER = 1.0
STD_FLOOR = 1e-8  # a flat channel has std 0; it is standardised to zeros instead of NaN
# RGB → YIQ (NTSC 1953): Y is the luminance, I and Q the chrominance.
YIQ_FROM_RGB = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)


@dataclass(frozen=True)
class ColorTransfer:
    name: str
    stage: Literal["style", "output"]
    function: Callable[[Tensor, Tensor], Tensor]  # (image, content) -> image
    description: str


COLOR_TRANSFERS: Registry[ColorTransfer] = Registry("colour preservation method")


def choices() -> list[str]:
    """Every value ``--preserve-color`` accepts: ``none`` and the registered methods."""
    return [NONE, *COLOR_TRANSFERS.names()]


def _register(name: str, stage: Literal["style", "output"], description: str):
    def decorator(function: Callable[[Tensor, Tensor], Tensor]):
        COLOR_TRANSFERS.register(name)(ColorTransfer(name, stage, function, description))
        return function

    return decorator


def _flatten(image: Tensor) -> Tensor:
    """(3, H, W) or (N, 3, H, W) → (N, 3, H*W)."""
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"expected an RGB image of shape (3, H, W) or (N, 3, H, W), got {tuple(image.shape)}")
    batched = image if image.dim() == 4 else image.unsqueeze(0)
    return batched.reshape(batched.shape[0], 3, -1)


def _sqrtm(matrix: Tensor) -> Tensor:
    """Symmetric square root of symmetric positive definite (..., 3, 3) matrices."""
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag_embed(values.clamp_min(0).sqrt()) @ vectors.transpose(-1, -2)


def _standardise(flat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-channel zero mean, unit (unbiased) std; returns (standardised, mean, std)."""
    mean = flat.mean(dim=-1, keepdim=True)  # (N, 3, 1)
    std = flat.std(dim=-1, keepdim=True).clamp_min(STD_FLOOR)  # (N, 3, 1)
    return (flat - mean) / std, mean, std


@_register("coral", STAGE_STYLE, "style colours get the content's mean and covariance (CORAL), before stylising")
def coral(style: Tensor, content: Tensor) -> Tensor:
    """CORAL (Sun et al. 2016) as pytorch-AdaIN applies it to the style image.

    Both images' colours are standardised per channel (Z, unbiased std); the style's are
    whitened by their correlation matrix R_s and coloured by the content's R_c
    (z ↦ R_c^½ R_s^-½ z, with R = (ZZᵀ + I)/(M − 1) for M pixels), then given the content's
    per-channel std and mean. The result's mean equals the content's; its covariance does up
    to the regulariser I/(M − 1). pytorch-AdaIN uses ZZᵀ + I without the 1/(M − 1): the same
    result when both images have the same number of pixels, but otherwise a covariance off by
    the factor M_content/M_style, which this version does not have.
    """
    source = _flatten(style).double()  # (N, 3, M)
    target = _flatten(content).double()  # (N', 3, M')
    source_z, _, _ = _standardise(source)
    target_z, target_mean, target_std = _standardise(target)
    transform = _sqrtm(_correlation(target_z)) @ torch.linalg.inv(_sqrtm(_correlation(source_z)))  # (N, 3, 3)
    result = (transform @ source_z) * target_std + target_mean  # (N, 3, M)
    return result.to(style.dtype).reshape(style.shape)


def _correlation(standardised: Tensor) -> Tensor:
    """(ZZᵀ + I)/(M − 1) for standardised colours Z (N, 3, M): the regularised correlation matrix."""
    eye = torch.eye(3, dtype=standardised.dtype, device=standardised.device)
    scatter = standardised @ standardised.transpose(-1, -2) + CORAL_REGULARIZER * eye  # (N, 3, 3)
    return scatter / max(standardised.shape[-1] - 1, 1)


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """numpy.interp for increasing ``xp``: piecewise linear, constant beyond the ends."""
    if xp.numel() == 1:
        return fp.expand_as(x).clone()
    upper = torch.searchsorted(xp, x, right=True).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[upper - 1], xp[upper], fp[upper - 1], fp[upper]
    t = ((x - x0) / (x1 - x0)).clamp(0, 1)
    return f0 + t * (f1 - f0)


def _match_channel(source: Tensor, template: Tensor) -> Tensor:
    """Map 1-D ``source`` values so that their empirical CDF follows ``template``'s.

    Equal source values map to equal results (quantiles of unique values, as in
    scikit-image's ``match_histograms``).
    """
    values, inverse, counts = torch.unique(source, return_inverse=True, return_counts=True)
    template_values, template_counts = torch.unique(template, return_counts=True)
    quantiles = torch.cumsum(counts, 0).double() / source.numel()  # (U,)
    template_quantiles = torch.cumsum(template_counts, 0).double() / template.numel()  # (U',)
    matched = _interp(quantiles, template_quantiles, template_values.double())  # (U,)
    return matched.to(source.dtype)[inverse]


@_register("histogram", STAGE_STYLE, "each style channel is matched to the content's histogram, before stylising")
def histogram(style: Tensor, content: Tensor) -> Tensor:
    """Per-channel histogram matching of ``style`` to ``content`` (sizes may differ)."""
    source, target = _flatten(style), _flatten(content)  # (N, 3, M), (N', 3, M')
    if target.shape[0] not in (1, source.shape[0]):
        raise ValueError(f"{target.shape[0]} content images for {source.shape[0]} style images")
    result = torch.empty_like(source)
    for n in range(source.shape[0]):
        for channel in range(3):
            result[n, channel] = _match_channel(source[n, channel], target[min(n, target.shape[0] - 1), channel])
    return result.reshape(style.shape)


def _linear_colour(matrix: Tensor, image: Tensor) -> Tensor:
    """Apply a 3x3 colour matrix to (…, 3, H, W), computing in float64."""
    return torch.einsum("ij,...jhw->...ihw", matrix, image.double()).to(image.dtype)


def _yiq_matrix(image: Tensor) -> Tensor:
    return torch.tensor(YIQ_FROM_RGB, dtype=torch.float64, device=image.device)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """(…, 3, H, W) RGB → YIQ, channel 0 the luminance."""
    return _linear_colour(_yiq_matrix(image), image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    return _linear_colour(torch.linalg.inv(_yiq_matrix(image)), image)


@_register("luminance", STAGE_OUTPUT, "the output keeps the content's chrominance (YIQ) and only its own luminance")
def luminance(output: Tensor, content: Tensor) -> Tensor:
    """Y from ``output``, I and Q from ``content`` (same shape), back to RGB."""
    if output.shape != content.shape:
        raise ValueError(f"luminance transfer needs equal shapes, got {tuple(output.shape)} and {tuple(content.shape)}")
    out_yiq, content_yiq = rgb_to_yiq(output.double()), rgb_to_yiq(content.double())  # (…, 3, H, W)
    combined = torch.cat([out_yiq[..., :1, :, :], content_yiq[..., 1:, :, :]], dim=-3)  # (…, 3, H, W)
    return yiq_to_rgb(combined).to(output.dtype)


def get(name: str | None) -> ColorTransfer | None:
    """The registered method, or None for ``none``; unknown names raise a UsageError."""
    if name in (None, NONE):
        return None
    return COLOR_TRANSFERS.get(name)


def uses_style_stage(name: str | None) -> bool:
    method = get(name)
    return method is not None and method.stage == STAGE_STYLE


def uses_output_stage(name: str | None) -> bool:
    method = get(name)
    return method is not None and method.stage == STAGE_OUTPUT


def prepare_style(style: Tensor, content: Tensor, name: str | None) -> Tensor:
    """Apply a style-stage method to ``style``; other methods leave it unchanged."""
    method = get(name)
    return method.function(style, content) if method is not None and method.stage == STAGE_STYLE else style


def finish_output(output: Tensor, content: Tensor, name: str | None) -> Tensor:
    """Apply an output-stage method to ``output``; other methods leave it unchanged."""
    method = get(name)
    return method.function(output, content) if method is not None and method.stage == STAGE_OUTPUT else output
