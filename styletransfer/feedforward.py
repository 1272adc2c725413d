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
* colour preservation from :mod:`styletransfer.color`;
* speed: channels-last memory format (default) and optional bfloat16 networks
  (``precision="bf16"``), on a trimmed copy of the model (encoder up to relu4_1), so the
  caller's model is left as it is;
* bounded memory for large images: above a pixel threshold the image is stylised in tiles with
  a halo, sharing global content statistics (see :mod:`styletransfer.tiling`).

AdaIN followed by the α blend is a per-channel affine map of the content features
(:func:`~styletransfer.adain.adain_affine`), which is how it is applied here: one multiply-add.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import color
from .adain import ADAIN_EPS, ADAIN_LAYER, DECODER_PLAN, AdaINModel, adain_affine
from .encoder import VGGEncoder
from .errors import ImageError, UsageError, WeightsError
from .norms import NORMS
from .imageio import MIN_SIDE, grayscale, resize_edge, resize_to
from .precision import DEFAULT_PRECISION, check_precision, dtype_of
from .tiling import FEATURE_STRIDE, Box, ChannelMoments, check_tile_size, exact_halo, plan_tiles

PAD_MULTIPLE = FEATURE_STRIDE  # relu4_1 lies after three 2x poolings
DEFAULT_SIZE = 512  # pytorch-AdaIN's --content_size / --style_size (shorter side)
MASK_THRESHOLD = 0.5  # a feature cell is foreground when at least half its pixels are white
MIN_REGION = 2  # positions needed for an unbiased variance
DEFAULT_TILE_SIZE = 1024  # pixels a side, when tiling is automatic
TILE_THRESHOLD_PIXELS = 1536 * 1536  # automatic tiling above this many (padded) pixels
MIN_TILE_SIZE = 2 * FEATURE_STRIDE


@dataclass(frozen=True)
class StyleStatistics:
    """Channel mean and std of a style's relu4_1 features, each (1, C, 1, 1)."""

    mean: Tensor
    std: Tensor


def check_feedforward_settings(config) -> None:
    """The settings every feed-forward config has (alpha, style_weights, preserve_color,
    content_size, style_size, precision), each refused with a usage error when out of range."""
    if not (isinstance(config.alpha, (int, float)) and 0.0 <= config.alpha <= 1.0):
        raise UsageError(f"--alpha must be between 0 and 1, got {config.alpha}")
    weights = config.style_weights
    if weights is not None and (any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0):
        raise UsageError(f"style interpolation weights must be ≥ 0 with a positive sum, got {weights}")
    color.get(config.preserve_color)
    for flag, size in (("--content-size", config.content_size), ("--style-size", config.style_size)):
        if size != 0 and size < MIN_SIDE:
            raise UsageError(f"{flag} must be 0 (keep the original size) or ≥ {MIN_SIDE}, got {size}")
    dtype_of(config.precision)


@dataclass
class AdaINConfig:
    """Every setting of a feed-forward run; stored whole in reports and image metadata."""

    alpha: float = 1.0  # 0: the content reconstructed; 1: full stylisation
    style_weights: tuple[float, ...] | None = None  # interpolation weights; default equal
    preserve_color: str = color.NONE  # none, or a name in color.COLOR_TRANSFERS
    content_size: int = DEFAULT_SIZE  # shorter side; 0 keeps the original size
    style_size: int = DEFAULT_SIZE  # shorter side; 0 keeps the original size
    crop: bool = False  # centre crop to a square after resizing
    precision: str = DEFAULT_PRECISION  # fp32, or bf16: bfloat16 networks (fast where native)
    channels_last: bool = True  # NHWC memory format for the networks: same results, faster on CPUs
    tile_size: int | None = None  # pixels a side; None: automatic above TILE_THRESHOLD_PIXELS; 0: never
    tile_halo: int | None = None  # pixels around each tile; None: the exact halo (tiling.exact_halo)

    def validate(self) -> "AdaINConfig":
        check_feedforward_settings(self)
        check_tile_size(self.tile_size, FEATURE_STRIDE, MIN_TILE_SIZE)
        if self.tile_halo is not None and (self.tile_halo < 0 or self.tile_halo % FEATURE_STRIDE):
            raise UsageError(f"--tile-halo must be a multiple of {FEATURE_STRIDE} that is ≥ 0, got {self.tile_halo}")
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


def accumulate(moments: Sequence[ChannelMoments], features: Tensor, foreground: Tensor | None) -> None:
    """Add (N, C, h, w) features to their regions' moments: one region (``foreground`` None),
    or two, the positions where the (h, w) ``foreground`` is True and the rest."""
    if foreground is None:
        moments[0].add(features)
        return
    for region_moments, selected in zip(moments, (foreground, ~foreground)):
        if bool(selected.all()):
            region_moments.add(features)
        elif bool(selected.any()):
            region_moments.add(features[:, :, selected])  # (N, C, K)


def region_affines(moments: Sequence[ChannelMoments], styles: Sequence[StyleStatistics],
                   alpha: float) -> list[tuple[Tensor, Tensor]]:
    """(scale, shift) of α·AdaIN + (1 − α)·identity for each region, from its content moments.

    A region of one position (or none) has no variance: its normalised value is taken as 0, so
    AdaIN gives the style mean there.
    """
    affines = []
    for region_moments, style in zip(moments, styles):
        if region_moments.count >= MIN_REGION:
            mean, std = region_moments.mean_std(ADAIN_EPS)  # (N, C, 1, 1) each
            affines.append(adain_affine(mean, std, style.mean, style.std, alpha))
        else:
            affines.append((torch.full_like(style.std, 1 - alpha), alpha * style.mean))
    return affines


def apply_affines(features: Tensor, foreground: Tensor | None, affines: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """features·scale + shift, with the region's (scale, shift) at each position."""
    if foreground is None:
        scale, shift = affines[0]
    else:
        where = foreground[None, None]  # (1, 1, h, w)
        scale = torch.where(where, affines[0][0], affines[1][0])  # (N, C, h, w)
        shift = torch.where(where, affines[0][1], affines[1][1])
    return features * scale + shift


def masked_adain(features: Tensor, foreground: Tensor, fg: StyleStatistics, bg: StyleStatistics) -> Tensor:
    """AdaIN per region: positions where ``foreground`` (h, w) is True get ``fg``, the rest ``bg``.

    Each region is normalised with its own channel statistics, so an all-True mask gives
    ``adain(features, fg.mean, fg.std)`` (up to rounding).
    """
    moments = [ChannelMoments(), ChannelMoments()]
    accumulate(moments, features, foreground)
    return apply_affines(features, foreground, region_affines(moments, (fg, bg), 1.0))


def feature_mask(mask: Tensor, feature_size: tuple[int, int]) -> Tensor:
    """A (1, H, W) mask in [0, 1] at the content's size → (h, w) booleans at the feature size."""
    padded = pad_to_multiple(mask.unsqueeze(0))  # (1, 1, H', W')
    cells = F.interpolate(padded, size=tuple(feature_size), mode="area")  # (1, 1, h, w)
    return cells[0, 0] >= MASK_THRESHOLD


def compute_model(model: AdaINModel, dtype: torch.dtype, memory_format: torch.memory_format,
                  device: torch.device) -> AdaINModel:
    """The model as the stylizer runs it: ``model`` itself for float32 in the default layout,
    otherwise a copy (encoder trimmed to relu4_1) in ``dtype`` and ``memory_format``."""
    if dtype == torch.float32 and memory_format == torch.contiguous_format:
        return model
    encoder = model.encoder
    trimmed = VGGEncoder(dataclasses.replace(encoder.spec, last_layer=ADAIN_LAYER))
    missing = trimmed.load_state_dict(encoder.state_dict(), strict=False).missing_keys  # layers past relu4_1 left out
    if missing:
        raise WeightsError(f"cannot copy the encoder for the fast path (missing {', '.join(missing[:3])}): "
                           "use --precision fp32 --no-channels-last")
    network = AdaINModel(trimmed, copy.deepcopy(model.decoder))
    return network.to(device=device, dtype=dtype, memory_format=memory_format).eval()


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
        self.dtype = check_precision(self.config.precision, self.device)
        self.memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        self.network = compute_model(self.model, self.dtype, self.memory_format, self.device)
        self.halo = exact_halo(ADAIN_LAYER, DECODER_PLAN) if self.config.tile_halo is None else self.config.tile_halo
        norm = getattr(self.model.decoder, "norm", "none")
        # a norm over the whole image would change if the image came in tiles
        self._tileable = NORMS.get(norm).pointwise_at_inference
        if self.config.tile_size and not self._tileable:
            raise UsageError(f"this decoder's {norm!r} normalization works over the whole image, which tiles "
                             "would change: use --tile-size 0")

    def tile_size(self, height: int, width: int, *, style: bool = False) -> int:
        """The tile side used for an image of this size; 0 when it is processed whole.

        Contents follow ``config.tile_size`` (automatic: tiles above TILE_THRESHOLD_PIXELS, if
        the decoder allows). Styles are only encoded, for their statistics, and are tiled only
        when above the threshold, whatever the tile size, so small tiles never slow them down.
        """
        size = self.config.tile_size
        if size == 0:
            return 0
        if size is None or style:
            if height * width <= TILE_THRESHOLD_PIXELS or not (style or self._tileable):
                return 0
            size = size or DEFAULT_TILE_SIZE
        return size if max(height, width) > size else 0

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
        image = prepared_style.unsqueeze(0).to(self.device)  # (1, 3, h, w)
        tile_size = self.tile_size(*image.shape[-2:], style=True)
        if not tile_size:
            mean, std = self.network.style_statistics(self._network_input(image))  # (1, C, 1, 1) each
        else:
            _, (moments,) = self._encode_tiles(image, plan_tiles(*image.shape[-2:], tile_size), None, keep=False)
            mean, std = moments.mean_std(ADAIN_EPS)
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
        if mask is not None:
            if len(styles) != 2:
                raise UsageError(f"a mask needs exactly two styles (foreground, background), got {len(styles)}")
            if cfg.style_weights is not None:
                raise UsageError("a mask and style interpolation weights cannot be combined")
        stats = [s if isinstance(s, StyleStatistics) else self._statistics(self.prepare_style(s, content_p))
                 for s in styles]
        height, width = content_p.shape[-2:]
        padded = pad_to_multiple(content_p.unsqueeze(0))  # (1, 3, H', W'), multiples of 8
        cells = (padded.shape[-2] // FEATURE_STRIDE, padded.shape[-1] // FEATURE_STRIDE)
        foreground = None if mask is None else feature_mask(self._prepare_mask(mask, content), cells)  # (h, w)
        region_styles = stats if mask is not None else [mix_statistics(stats, cfg.style_weights)]
        tiles = plan_tiles(*padded.shape[-2:], self.tile_size(*padded.shape[-2:]))
        features, moments = self._encode_tiles(padded, tiles, foreground)
        affines = region_affines(moments, region_styles, cfg.alpha)
        output = self._decode_tiles(features, tiles, foreground, affines)[0, :, :height, :width]  # (3, H, W)
        output = color.finish_output(output, content_p, cfg.preserve_color)
        return output.clamp(0, 1).cpu().contiguous()

    def _network_input(self, image: Tensor) -> Tensor:
        return image.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)

    def _encode_tiles(self, image: Tensor, tiles: list[Box], foreground: Tensor | None, *,
                      keep: bool = True) -> tuple[Tensor | None, list[ChannelMoments]]:
        """Pass 1: relu4_1 features of a (1, 3, H, W) image, tile by tile (each grown by the halo).

        Returns the float32 feature map of the whole image (None unless ``keep``) and the
        channel moments of each region, accumulated from every tile's own cells.
        """
        height, width = image.shape[-2:]
        moments = [ChannelMoments() for _ in range(1 if foreground is None else 2)]
        features: Tensor | None = None
        for tile in tiles:
            outer = tile.grow(self.halo, height, width)
            encoded = self.network.encode(self._network_input(outer.crop(image)))  # (1, C, h_o, w_o)
            cells = _cells(tile, outer, encoded, height, width)
            own = cells.within(outer.scaled(1 / FEATURE_STRIDE)).crop(encoded).float()  # (1, C, h_t, w_t)
            accumulate(moments, own, None if foreground is None else cells.crop(foreground))
            if not keep:
                continue
            if len(tiles) == 1:
                features = own
                break
            if features is None:
                features = own.new_empty((*own.shape[:2], height // FEATURE_STRIDE, width // FEATURE_STRIDE))
            cells.crop(features).copy_(own)
        return features, moments

    def _decode_tiles(self, features: Tensor, tiles: list[Box], foreground: Tensor | None,
                      affines: list[tuple[Tensor, Tensor]]) -> Tensor:
        """Pass 2: AdaIN (as per-region affine maps) and the decoder, tile by tile (each grown by
        the halo, which is cropped off the output). Returns (1, 3, H, W) in float32."""
        rows, cols = features.shape[-2:]
        margin = self.halo // FEATURE_STRIDE
        output: Tensor | None = None
        for tile in tiles:
            cells = tile.scaled(1 / FEATURE_STRIDE)
            outer = cells.grow(margin, rows, cols)
            target = apply_affines(outer.crop(features), None if foreground is None else outer.crop(foreground),
                                   affines)  # (1, C, h_o, w_o)
            decoded = self.network.decoder(self._network_input(target))  # (1, 3, 8·h_o, 8·w_o)
            own = cells.within(outer).scaled(FEATURE_STRIDE).crop(decoded).float()
            if len(tiles) == 1:
                return own
            if output is None:
                output = own.new_empty((1, 3, rows * FEATURE_STRIDE, cols * FEATURE_STRIDE))
            tile.crop(output).copy_(own)
        assert output is not None
        return output

    def _prepare_mask(self, mask: Tensor, content: Tensor) -> Tensor:
        """The mask stretched to the content's original size, then resized/cropped like it."""
        mask = resize_to(grayscale(mask).float(), *content.shape[-2:])  # (1, H0, W0)
        return prepare_image(mask, self.config.content_size, self.config.crop).to(self.device)  # (1, H, W)


def _cells(tile: Box, outer: Box, encoded: Tensor, height: int, width: int) -> Box:
    """A tile's own feature cells. Tiles start on multiples of 8; one ending at the image's edge
    owns every cell the encoder gives up to there (ceil-mode pooling makes a partial cell)."""
    start = outer.scaled(1 / FEATURE_STRIDE)
    bottom = start.top + encoded.shape[-2] if tile.bottom == height else tile.bottom // FEATURE_STRIDE
    right = start.left + encoded.shape[-1] if tile.right == width else tile.right // FEATURE_STRIDE
    return Box(tile.top // FEATURE_STRIDE, tile.left // FEATURE_STRIDE, bottom, right)


def _checked(image: Tensor, what: str, flag: str) -> Tensor:
    if min(image.shape[-2:]) < MIN_SIDE:
        raise ImageError(f"the {what} image is {image.shape[-1]}x{image.shape[-2]} after resizing, smaller "
                         f"than the {MIN_SIDE}px AdaIN needs: use a larger image or {flag}")
    return image
