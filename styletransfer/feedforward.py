"""Feed-forward stylisation with AdaIN: one encoder pass, AdaIN at relu4_1, one decoder pass.

What it adds to :class:`~styletransfer.adain.AdaINModel`:

* ``alpha``: the decoder sees α·AdaIN(c, s) + (1 − α)·f(c) (pytorch-AdaIN's ``--alpha``);
* several styles with interpolation weights w_i (normalised to sum 1): pytorch-AdaIN decodes
  Σ w_i·AdaIN(c, s_i). AdaIN is affine in the style's (μ, σ), so that equals AdaIN with
  μ = Σ w_i μ_i and σ = Σ w_i σ_i, which is what is computed;
* spatial control: a mask (white = foreground) at the feature size splits the content features
  into two regions; each region is normalised with its own statistics and gets its own style;
* exact output size: the content is reflect-padded to a multiple of 8 (relu4_1 is three 2×
  poolings deep) and the output cropped back, so the output is exactly the content's size;
* style statistics computed once and reused: :meth:`AdaINStylizer.style_statistics` returns
  them, and :meth:`AdaINStylizer.stylize` takes them in place of style images;
* colour preservation from :mod:`styletransfer.color`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import color
from .adain import ADAIN_LAYER, AdaINModel, adain, check_decoder_encoder
from .encoder import VGGEncoder
from .errors import ImageError, UsageError, WeightsError
from .imageio import MIN_SIDE, resize_edge, resize_to

PAD_MULTIPLE = 8  # relu4_1 lies after three 2x poolings
DEFAULT_SIZE = 512  # pytorch-AdaIN's --content_size / --style_size (shorter side)
MASK_THRESHOLD = 0.5  # a feature cell is foreground when at least half its pixels are white
MIN_REGION = 2  # positions needed for an unbiased variance


@dataclass(frozen=True)
class StyleStatistics:
    """Channel mean and std of a style's relu4_1 features, each (1, C, 1, 1)."""

    mean: Tensor
    std: Tensor


@dataclass
class AdaINConfig:
    """Every setting of a feed-forward run; stored whole in reports and image metadata."""

    alpha: float = 1.0  # 0: the content reconstructed; 1: full stylisation
    style_weights: tuple[float, ...] | None = None  # interpolation weights; default equal
    preserve_color: str = color.NONE  # none, or a name in color.COLOR_TRANSFERS
    content_size: int = DEFAULT_SIZE  # shorter side; 0 keeps the original size
    style_size: int = DEFAULT_SIZE  # shorter side; 0 keeps the original size
    crop: bool = False  # centre crop to a square after resizing

    def validate(self) -> "AdaINConfig":
        if not (isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha <= 1.0):
            raise UsageError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.style_weights is not None:
            if any(not math.isfinite(w) or w < 0 for w in self.style_weights) or sum(self.style_weights) <= 0:
                raise UsageError(f"style interpolation weights must be ≥ 0 with a positive sum, got {self.style_weights}")
        color.get(self.preserve_color)
        for flag, size in (("--content-size", self.content_size), ("--style-size", self.style_size)):
            if size != 0 and size < MIN_SIDE:
                raise UsageError(f"{flag} must be 0 (keep the original size) or ≥ {MIN_SIDE}, got {size}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def center_crop(image: Tensor) -> Tensor:
    """The central square of a (…, H, W) image, its side the shorter edge."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[..., top:top + side, left:left + side]


def prepare_image(image: Tensor, size: int, crop: bool) -> Tensor:
    """Resize so the shorter edge is ``size`` (0 keeps it), then optionally centre crop."""
    image = resize_edge(image, size, edge="short")
    return center_crop(image) if crop else image


def pad_to_multiple(image: Tensor, multiple: int = PAD_MULTIPLE) -> Tensor:
    """Reflect-pad a (N, C, H, W) batch at the bottom and right to multiples of ``multiple``."""
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return image
    return F.pad(image, (0, pad_w, 0, pad_h), mode="reflect")  # (N, C, H + pad_h, W + pad_w)


def mix_statistics(styles: Sequence[StyleStatistics], weights: Sequence[float] | None = None) -> StyleStatistics:
    """Σ w_i μ_i and Σ w_i σ_i with weights normalised to sum 1 (equal when not given)."""
    if weights is None:
        if len(styles) == 1:
            return styles[0]
        weights = [1.0] * len(styles)
    if len(weights) != len(styles):
        raise UsageError(f"{len(weights)} style interpolation weights for {len(styles)} styles: give one per style")
    total = float(sum(weights))
    mean = sum(w / total * s.mean for w, s in zip(weights, styles))  # (1, C, 1, 1)
    std = sum(w / total * s.std for w, s in zip(weights, styles))  # (1, C, 1, 1)
    return StyleStatistics(mean, std)


def masked_adain(features: Tensor, foreground: Tensor, fg: StyleStatistics, bg: StyleStatistics) -> Tensor:
    """AdaIN per region: positions where ``foreground`` (h, w) is True get ``fg``, the rest ``bg``.

    Each region is normalised with its own channel statistics, so an all-True mask gives
    exactly ``adain(features, fg.mean, fg.std)``.
    """
    n, c = features.shape[:2]
    flat = features.reshape(n, c, -1)  # (N, C, h*w)
    selected = foreground.reshape(-1)  # (h*w,)
    target = torch.empty_like(flat)
    for region, stats in ((selected, fg), (~selected, bg)):
        count = int(region.sum())
        if count >= MIN_REGION:
            part = flat[:, :, region].unsqueeze(-1)  # (N, C, K, 1)
            target[:, :, region] = adain(part, stats.mean, stats.std).squeeze(-1)
        elif count:  # one position: its normalised value is 0, so AdaIN gives the style mean
            target[:, :, region] = stats.mean.reshape(-1, c, 1)  # (N or 1, C, 1)
    return target.reshape(features.shape)


def feature_mask(mask: Tensor, feature_size: tuple[int, int]) -> Tensor:
    """A (1, H, W) mask in [0, 1] at the content's size → (h, w) booleans at the feature size."""
    padded = pad_to_multiple(mask.unsqueeze(0))  # (1, 1, H', W')
    cells = F.interpolate(padded, size=tuple(feature_size), mode="area")  # (1, 1, h, w)
    return cells[0, 0] >= MASK_THRESHOLD


def grayscale(mask: Tensor) -> Tensor:
    """(3, H, W), (1, H, W) or (H, W) → (1, H, W), the mean of the channels."""
    if mask.dim() == 2:
        return mask.unsqueeze(0)
    return mask.mean(dim=0, keepdim=True)


def decoder_warning(decoder_config: dict, encoder: VGGEncoder) -> str | None:
    """Why this decoder and encoder may not belong together, or None.

    Our decoder files record their encoder; pytorch-AdaIN's decoder.pth (no config) was
    trained with its own vgg_normalised.pth, which is recognised by its layout.
    """
    warning = check_decoder_encoder(decoder_config, encoder)
    if warning is None and not decoder_config and encoder.spec.metadata.get("layout") != "adain":
        warning = (f"this decoder records no encoder (pytorch-AdaIN's decoder.pth is trained with its "
                   f"vgg_normalised.pth), but the encoder in use is {encoder.spec.source!r}: pass "
                   "--weights vgg_normalised.pth, or expect poor images")
    return warning


class AdaINStylizer:
    """One AdaIN model with one config, ready to stylise many content images."""

    def __init__(self, model: AdaINModel, config: AdaINConfig | None = None, *,
                 device: torch.device | str = "cpu") -> None:
        if ADAIN_LAYER not in model.encoder.layer_names:
            raise WeightsError(f"the encoder {model.encoder.spec.source!r} ends at "
                               f"{model.encoder.layer_names[-1]}, but AdaIN needs {ADAIN_LAYER}: "
                               "pass weights that reach it")
        self.config = (config or AdaINConfig()).validate()
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def prepare_content(self, content: Tensor) -> Tensor:
        """(3, H, W) → resized and cropped as the config says."""
        return _checked(prepare_image(content, self.config.content_size, self.config.crop), "content", "--content-size")

    def prepare_style(self, style: Tensor, prepared_content: Tensor | None = None) -> Tensor:
        """(3, H, W) → resized, cropped and, for coral/histogram, colour-matched to the content."""
        cfg = self.config
        style = _checked(prepare_image(style, cfg.style_size, cfg.crop), "style", "--style-size")
        if color.uses_style_stage(cfg.preserve_color):
            if prepared_content is None:
                raise UsageError(f"colour preservation {cfg.preserve_color!r} changes the style for each "
                                 "content image: give the content image too")
            style = color.prepare_style(style, prepared_content.to(style.device), cfg.preserve_color)
        return style

    @torch.inference_mode()
    def style_statistics(self, style: Tensor, content: Tensor | None = None) -> StyleStatistics:
        """μ and σ of a style image's relu4_1 features; compute once, reuse for many contents.

        With ``coral`` or ``histogram`` colour preservation the style depends on the content,
        which must then be given.
        """
        prepared_content = self.prepare_content(content) if content is not None else None
        return self._statistics(self.prepare_style(style, prepared_content))

    def _statistics(self, prepared_style: Tensor) -> StyleStatistics:
        mean, std = self.model.style_statistics(prepared_style.unsqueeze(0).to(self.device))  # (1, C, 1, 1) each
        return StyleStatistics(mean, std)

    @torch.inference_mode()
    def stylize(self, content: Tensor, styles: Sequence[Tensor | StyleStatistics], *,
                mask: Tensor | None = None) -> Tensor:
        """Stylise a (3, H, W) content image; returns (3, H', W') in [0, 1] on the CPU.

        (H', W') is the content's size after ``content_size``/``crop``: with ``content_size=0``
        exactly the input's. ``styles`` are style images (3, h, w) or their precomputed
        statistics. With a ``mask`` (white = foreground, any size; stretched to the content)
        exactly two styles are needed: the first for the foreground, the second for the rest.
        """
        cfg = self.config
        if not styles:
            raise UsageError("give at least one style image")
        content_p = self.prepare_content(content).to(self.device)  # (3, H, W)
        if color.uses_style_stage(cfg.preserve_color) and any(isinstance(s, StyleStatistics) for s in styles):
            raise UsageError(f"colour preservation {cfg.preserve_color!r} changes the style for each content "
                             "image: pass style images, not precomputed statistics")
        stats = [s if isinstance(s, StyleStatistics) else self._statistics(self.prepare_style(s, content_p))
                 for s in styles]
        height, width = content_p.shape[-2:]
        features = self.model.encode(pad_to_multiple(content_p.unsqueeze(0)))  # (1, C, H'/8, W'/8)
        if mask is not None:
            if len(stats) != 2:
                raise UsageError(f"a mask needs exactly two styles (foreground, background), got {len(stats)}")
            if cfg.style_weights is not None:
                raise UsageError("a mask and style interpolation weights cannot be combined")
            region = feature_mask(self._prepare_mask(mask, content), features.shape[-2:])  # (h, w)
            target = masked_adain(features, region, stats[0], stats[1])
        else:
            mixed = mix_statistics(stats, cfg.style_weights)
            target = adain(features, mixed.mean, mixed.std)  # (1, C, h, w)
        target = target * cfg.alpha + features * (1 - cfg.alpha)
        output = self.model.decoder(target)[0, :, :height, :width]  # (3, H, W)
        output = color.finish_output(output, content_p, cfg.preserve_color)
        return output.clamp(0, 1).cpu()

    def _prepare_mask(self, mask: Tensor, content: Tensor) -> Tensor:
        """The mask stretched to the content's original size, then resized/cropped like it."""
        mask = resize_to(grayscale(mask).float(), *content.shape[-2:])  # (1, H0, W0)
        return prepare_image(mask, self.config.content_size, self.config.crop).to(self.device)  # (1, H, W)


def _checked(image: Tensor, what: str, flag: str) -> Tensor:
    if min(image.shape[-2:]) < MIN_SIDE:
        raise ImageError(f"the {what} image is {image.shape[-1]}x{image.shape[-2]} after resizing, smaller "
                         f"than the {MIN_SIDE}px AdaIN needs: use a larger image or {flag}")
    return image
