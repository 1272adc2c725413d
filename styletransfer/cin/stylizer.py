"""Feed-forward stylisation with the 26-style network (``stylize --method cin``).

content + style weights w → transformer → image. The styles are built into the network, so
there is no style image: a run names style indices (0–25) and, for a blend, their weights,
normalised to sum 1 as the package does (``--style-index 3:0.5,12:0.5``); the blend happens in
every norm's parameters, γ = Σ w_s γ_s and β = Σ w_s β_s, not between output images.

``alpha`` blends the output with the content, pixel by pixel: out = α·stylised + (1 − α)·content
(the package's ``strength``). Magenta interpolates embeddings instead, towards the content's own
embedding; this network has no such point: its γ, β are learned per style, and no setting of
them reproduces the content (the network is no autoencoder), so the only content-side end of the
scale is the content itself.

The network runs at the content's own resolution: the content is reflect-padded to a multiple of
4 (its two stride-2 convs) and the output cropped back, so the output has the content's size.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import Tensor

from .. import color
from ..errors import UsageError
from ..magenta.networks import StyleTransformer
from ..precision import DEFAULT_PRECISION, check_precision
from ..realtime import check_feedforward_settings, check_prepared, pad_to_multiple, prepare_image, weighted_average
from .networks import NUM_STYLES, STRIDE
from .weights import load_transformer, network_info

FLAG = "--style-index"
EXAMPLE = f"e.g. {FLAG} 7, or {FLAG} 3:0.5,12:0.5 for a blend"
STYLES_PICTURE = "docs/cin_styles.png"  # every style on one content, to choose from


def parse_style_index(text: str | None) -> dict:
    """'7' → one style; '3:0.5,12:0.5' → a blend (a weight left out counts 1; a repeated index
    adds up): ``{"styles": (3, 12), "style_weights": (0.5, 0.5)}``, the fields of ``CINConfig``
    (``style_weights`` None when every weight is 1: equal). Malformed or missing text is a usage
    error; the indices' range and the weights' signs are ``CINConfig.validate``'s to check."""
    if text is None:
        raise UsageError(f"--method cin needs {FLAG}: {EXAMPLE} (the {NUM_STYLES} styles are pictured in "
                         f"{STYLES_PICTURE})")
    chosen: dict[int, float] = {}
    for part in text.split(","):
        index_text, sep, weight_text = part.strip().partition(":")
        index_text = index_text.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", index_text):
            raise UsageError(f"{FLAG} {text!r}: {index_text or part.strip()!r} is not a style index "
                             f"(a whole number 0 to {NUM_STYLES - 1}); {EXAMPLE}")
        weight = 1.0
        if sep:
            try:
                weight = float(weight_text)
            except ValueError:
                raise UsageError(f"{FLAG} {text!r}: {weight_text.strip()!r} is not a weight; {EXAMPLE}") from None
        chosen[int(index_text)] = chosen.get(int(index_text), 0.0) + weight
    weights = tuple(chosen.values())
    return {"styles": tuple(chosen), "style_weights": None if all(w == 1.0 for w in weights) else weights}


@dataclass
class CINConfig:
    """Every setting of a ``--method cin`` run; stored whole in reports and image metadata."""

    styles: tuple[int, ...] = (0,)  # style indices, 0 … 25
    style_weights: tuple[float, ...] | None = None  # their weights (normalised to sum 1); default equal
    alpha: float = 1.0  # 1: the network's output; 0: the content; between: the two blended pixel by pixel
    preserve_color: str = color.NONE  # none, or an output-stage method (luminance): there is no style image
    content_size: int = 0  # shorter side; 0 keeps the original size
    crop: bool = False  # centre crop to a square after resizing
    precision: str = DEFAULT_PRECISION  # fp32, or a bf16 network

    def validate(self) -> "CINConfig":
        if not self.styles:
            raise UsageError(f"--method cin needs a style: {EXAMPLE} (the {NUM_STYLES} styles: {STYLES_PICTURE})")
        for index in self.styles:
            if not (isinstance(index, numbers.Integral) and 0 <= index < NUM_STYLES):
                raise UsageError(f"{FLAG}: there is no style {index}; the network has styles 0 to {NUM_STYLES - 1} "
                                 f"(pictured in {STYLES_PICTURE})")
        weights = self.style_weights
        if weights is not None and len(weights) != len(self.styles):
            raise UsageError(f"{len(weights)} weights for {len(self.styles)} styles: give one per style; {EXAMPLE}")
        if weights is not None and (any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0):
            raise UsageError(f"{FLAG}: the weights must be finite, ≥ 0 and not all 0, got "
                             f"{', '.join(f'{w:g}' for w in weights)}; {EXAMPLE}")
        if color.uses_style_stage(self.preserve_color):
            kept = " or ".join(name for name, method in color.COLOR_TRANSFERS.items()
                               if method.stage == color.STAGE_OUTPUT)
            raise UsageError(f"--preserve-color {self.preserve_color} recolours a style image, and --method cin has "
                             f"none: use --preserve-color {kept} (the content's colours in the output)")
        check_feedforward_settings(self)
        return self

    def mixture(self) -> Tensor:
        """The style weights w (26,), summing to 1: the network's condition."""
        one_hot = torch.eye(NUM_STYLES)
        return weighted_average([one_hot[index] for index in self.styles], self.style_weights)

    def to_dict(self) -> dict:
        return asdict(self)


class CINStylizer:
    """The 26-style network with a ``CINConfig``; the network is frozen. A
    :class:`~styletransfer.realtime.Stylizer` whose styles are the config's: it takes no style
    image and represents none."""

    representation_type = Tensor
    uses_own_style = False

    def __init__(self, transformer: StyleTransformer, config: CINConfig | None = None, *,
                 device: torch.device | str = "cpu") -> None:
        self.config = (config or CINConfig()).validate()
        self.device = torch.device(device)
        self.dtype = check_precision(self.config.precision, self.device)
        # NHWC, as for Magenta's transformer: the same result up to float rounding, faster on CPUs
        self.transformer = transformer.to(self.device, self.dtype, memory_format=torch.channels_last).eval()
        self.transformer.requires_grad_(False)

    def describe(self) -> dict:
        return {"networks": network_info()}

    def check_temporal(self, frame: Tensor) -> None:
        """No running statistics to smooth: nothing to refuse."""

    def represent_style(self, style: Tensor, content: Tensor | None = None) -> Tensor:
        raise UsageError(f"--method cin has its styles built in and takes no style image: choose with {EXAMPLE}")

    def prepare_content(self, content: Tensor) -> Tensor:
        prepared = prepare_image(content, self.config.content_size, self.config.crop)
        return check_prepared(prepared, "content", "--content-size", "--method cin")

    @torch.no_grad()
    def transform(self, content: Tensor, weights: Tensor) -> Tensor:
        """The network on a prepared (3, H, W) content with style weights (26,): (3, H, W)."""
        height, width = content.shape[-2:]
        batch = pad_to_multiple(content.unsqueeze(0).to(self.device, self.dtype), STRIDE)  # (1, 3, H', W')
        batch = batch.contiguous(memory_format=torch.channels_last)
        out = self.transformer(batch, weights.to(self.device, self.dtype).unsqueeze(0))  # (1, 3, H', W')
        return out[0, :, :height, :width].float().cpu()

    def stylize(self, content: Tensor, styles: Sequence = (), *, mask: Tensor | None = None) -> Tensor:
        """Stylise a (3, H, W) content in [0, 1] with the config's styles: (3, H, W), the size of
        the content after resizing (``content_size`` 0: its own size). No style images, no mask."""
        if styles or mask is not None:
            self.represent_style(content)  # refused: the styles are built in
        prepared = self.prepare_content(content)
        return self._finish(self.transform(prepared, self.config.mixture()), prepared)

    def stylize_batch(self, contents: Tensor, styles: Sequence[Sequence] | None = None, *,
                      own_styles: Sequence[Tensor] | None = None) -> Tensor:
        """B prepared contents (B, 3, H, W), each with the config's styles (``styles``: none, or
        empty groups): (B, 1, 3, H, W) in [0, 1] on the CPU."""
        if styles is not None and any(styles):
            self.represent_style(contents[0])  # refused: the styles are built in
        mixture = self.config.mixture()
        return torch.stack([self._finish(self.transform(content, mixture), content) for content in contents])[:, None]

    def _finish(self, image: Tensor, prepared: Tensor) -> Tensor:
        """The network's (3, H, W) output after output-stage colour preservation and the alpha blend."""
        cfg = self.config
        if color.uses_output_stage(cfg.preserve_color):
            image = color.finish_output(image, prepared, cfg.preserve_color)
        if cfg.alpha < 1:
            image = cfg.alpha * image + (1 - cfg.alpha) * prepared.cpu()
        return image.clamp(0, 1)


def load_stylizer(config: CINConfig | None = None, *, device: torch.device | str = "cpu") -> CINStylizer:
    transformer, _ = load_transformer()
    return CINStylizer(transformer, config, device=device)
