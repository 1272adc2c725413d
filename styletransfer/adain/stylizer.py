"""Feed-forward stylisation with AdaIN: one encoder pass, AdaIN at relu4_1, one decoder pass.

The one place AdaIN inference happens (``stylize --method adain``, ``compare``, the API). What
it adds to the networks of :class:`~styletransfer.adain.decoder.AdaINModel`:

* ``alpha``: the decoder sees α·AdaIN(c, s) + (1 − α)·f(c) (pytorch-AdaIN's ``--alpha``);
* several styles with interpolation weights w_i (normalised to sum 1): pytorch-AdaIN decodes
  Σ w_i·AdaIN(c, s_i). AdaIN is affine in the style's (μ, σ), so that equals AdaIN with
  μ = Σ w_i μ_i and σ = Σ w_i σ_i, which is what is computed;
* spatial control: a mask (white = foreground) at the feature size splits the content features
  into two regions; each region is normalised with its own statistics and gets its own style;
* exact output size: the content is reflect-padded to a multiple of 8 (relu4_1 is three 2×
  poolings deep) and the output cropped back, so the output is exactly the content's size;
* style statistics computed once and reused: :meth:`AdaINStylizer.represent_style` returns
  them, and :meth:`AdaINStylizer.stylize` takes them in place of style images;
* colour preservation from :mod:`styletransfer.color`;
* speed: channels-last memory format (default) and optional bfloat16 networks
  (``precision="bf16"``), on a trimmed copy of the model (encoder up to relu4_1), so the
  caller's model is left as it is;
* bounded memory for large images: above a pixel threshold the image is stylised in tiles with
  a halo, sharing global content statistics (see :mod:`styletransfer.tiling`).

AdaIN followed by the α blend is a per-channel affine map of the content features
(:func:`~styletransfer.adain.functional.adain_affine`), which is how it is applied here: one multiply-add.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass
from typing import ClassVar, Sequence

import torch
from torch import Tensor

from .. import color
from ..encoder import VGGEncoder
from ..errors import UsageError, WeightsError
from ..imageio import check_mask_styles, grayscale, resize_to
from ..norms import NORMS
from ..precision import DEFAULT_PRECISION, check_precision
from ..provenance import encoder_info
from ..realtime import (
    Networks,
    check_batch,
    check_feedforward_settings,
    check_prepared,
    finish_batch,
    pad_to_multiple,
    prepare_image,
    weighted_average,
)
from ..tiling import (
    DEFAULT_TILE_SIZE,
    FEATURE_STRIDE,
    TILE_THRESHOLD_PIXELS,
    Box,
    ChannelMoments,
    check_tile_size,
    exact_halo,
    plan_tiles,
)
from .decoder import DECODER_PLAN, AdaINModel, decoder_model, resolve_decoder
from .functional import ADAIN_EPS, ADAIN_LAYER
from .regions import StyleStatistics, accumulate, apply_affines, feature_mask, region_affines

DEFAULT_SIZE = 512  # pytorch-AdaIN's --content_size / --style_size (shorter side)
MIN_TILE_SIZE = 2 * FEATURE_STRIDE


@dataclass
class DecoderConfig:
    """The settings every method on an encoder–decoder pair has (AdaIN, WCT); stored whole in
    reports and image metadata."""

    alpha: float = 1.0  # 0: the content reconstructed; 1: full stylisation
    style_weights: tuple[float, ...] | None = None  # interpolation weights; default equal
    preserve_color: str = color.NONE  # none, or a name in color.COLOR_TRANSFERS
    content_size: int = DEFAULT_SIZE  # shorter side; 0 keeps the original size
    style_size: int = DEFAULT_SIZE  # shorter side; 0 keeps the original size
    crop: bool = False  # centre crop to a square after resizing
    precision: str = DEFAULT_PRECISION  # fp32, or bf16: bfloat16 networks (statistics stay float32 or wider)
    channels_last: bool = True  # NHWC memory format for the networks: same results, faster on CPUs

    def validate(self):
        check_feedforward_settings(self)
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AdaINConfig(DecoderConfig):
    """Every setting of an AdaIN run: the shared ones and tiling."""

    tile_size: int | None = None  # pixels a side; None: automatic above TILE_THRESHOLD_PIXELS; 0: never
    tile_halo: int | None = None  # pixels around each tile; None: the exact halo (tiling.exact_halo)

    def validate(self) -> "AdaINConfig":
        super().validate()
        check_tile_size(self.tile_size, FEATURE_STRIDE, MIN_TILE_SIZE)
        if self.tile_halo is not None and (self.tile_halo < 0 or self.tile_halo % FEATURE_STRIDE):
            raise UsageError(f"--tile-halo must be a multiple of {FEATURE_STRIDE} that is ≥ 0, got {self.tile_halo}")
        return self


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


class DecoderStylizer:
    """What the stylizers of an encoder–decoder pair share (AdaIN here, WCT in ``styletransfer.wct``):
    building from :class:`~styletransfer.realtime.Networks`, the encoder check, the compute copy of
    the networks, input preparation, style statistics computed once, and the checks of
    ``stylize``'s styles. A subclass names itself (``label``), its statistics type
    (``representation_type``), and implements ``_statistics(prepared_style)`` and ``_transform``
    (features to image); ``stylize`` is shared. A :class:`~styletransfer.realtime.Stylizer`."""

    label: ClassVar[str]
    representation_type: ClassVar[type]
    uses_own_style: ClassVar[bool] = False  # alpha blends the content's own features, not a representation
    # a hook on the content statistics a subclass's _transform computes, ``smooth(key, *stats)``
    # → the ones used; set per clip by --temporal (styletransfer.video.temporal); None: off
    smooth_moments = None

    def __init__(self, model: AdaINModel, config, *, device: torch.device | str = "cpu",
                 decoder_info: dict | None = None) -> None:
        if ADAIN_LAYER not in model.encoder.layer_names:
            raise WeightsError(f"the encoder {model.encoder.spec.source!r} ends at "
                               f"{model.encoder.layer_names[-1]}, but {self.label} needs {ADAIN_LAYER}: "
                               "pass weights that reach it")
        self.decoder_info = decoder_info or {"norm": getattr(model.decoder, "norm", "none")}
        self.config = config.validate()
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.dtype = check_precision(self.config.precision, self.device)
        self.memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        self.network = compute_model(self.model, self.dtype, self.memory_format, self.device)

    @classmethod
    def from_networks(cls, config, networks: Networks, device: torch.device | str = "cpu") -> "DecoderStylizer":
        """The stylizer on ``networks``' encoder and decoder (None: the decoder shipped for that
        encoder); warns when the two were not trained together."""
        decoder = resolve_decoder(networks.decoder, networks.weights, cls.label.lower())
        model, decoder_info = decoder_model(decoder, networks.weights, networks.pooling)
        return cls(model, config, device=device, decoder_info=decoder_info)

    def describe(self) -> dict:
        return {"weights": encoder_info(self.model.encoder), "decoder": self.decoder_info}

    def check_temporal(self, frame: Tensor) -> None:
        """Every frame can be smoothed: the tiled path takes its content moments through ``smooth_moments`` too."""

    def prepare_content(self, content: Tensor) -> Tensor:
        """(3, H, W) → resized and cropped as the config says."""
        prepared = prepare_image(content, self.config.content_size, self.config.crop)
        return check_prepared(prepared, "content", "--content-size", self.label)

    def prepare_style(self, style: Tensor, prepared_content: Tensor | None = None) -> Tensor:
        """(3, H, W) → resized, cropped and, for coral/histogram, colour-matched to the content."""
        cfg = self.config
        style = check_prepared(prepare_image(style, cfg.style_size, cfg.crop), "style", "--style-size", self.label)
        if color.uses_style_stage(cfg.preserve_color):
            if prepared_content is None:
                raise UsageError(f"colour preservation {cfg.preserve_color!r} changes the style for each "
                                 "content image: give the content image too")
            style = color.prepare_style(style, prepared_content.to(style.device), cfg.preserve_color)
        return style

    @torch.inference_mode()
    def represent_style(self, style: Tensor, content: Tensor | None = None):
        """The statistics of a style image's relu4_1 features; compute once, reuse for many contents.

        With ``coral`` or ``histogram`` colour preservation the style depends on the content,
        which must then be given.
        """
        prepared_content = self.prepare_content(content) if content is not None else None
        return self._statistics(self.prepare_style(style, prepared_content))

    style_statistics = represent_style  # the name before every stylizer had ``represent_style``

    def _statistics(self, prepared_style: Tensor):
        raise NotImplementedError

    def _transform(self, padded: Tensor, foreground: Tensor | None, region_styles: Sequence) -> Tensor:
        """Encode a (1, 3, H', W') padded content, transform its features (one style per region), decode:
        (1, 3, H', W') in float32."""
        raise NotImplementedError

    @torch.inference_mode()
    def stylize(self, content: Tensor, styles: Sequence = (), *, mask: Tensor | None = None) -> Tensor:
        """Stylise a (3, H, W) content image; returns (3, H', W') in [0, 1] on the CPU.

        (H', W') is the content's size after ``content_size``/``crop``: with ``content_size=0``
        exactly the input's. ``styles`` are style images (3, h, w) or their precomputed
        statistics. With a ``mask`` (white = foreground, any size; stretched to the content)
        exactly two styles are needed: the first for the foreground, the second for the rest.
        """
        cfg = self.config
        content_p = self.prepare_content(content).to(self.device)  # (3, H, W)
        stats = self._style_statistics_for(styles, content_p, mask)
        height, width = content_p.shape[-2:]
        padded = pad_to_multiple(content_p.unsqueeze(0), FEATURE_STRIDE)  # (1, 3, H', W'), multiples of 8
        cells = (padded.shape[-2] // FEATURE_STRIDE, padded.shape[-1] // FEATURE_STRIDE)
        foreground = None if mask is None else feature_mask(self._prepare_mask(mask, content), cells)  # (h, w)
        region_styles = stats if mask is not None else [weighted_average(stats, cfg.style_weights)]
        output = self._transform(padded, foreground, region_styles)[0, :, :height, :width]  # (3, H, W)
        output = color.finish_output(output, content_p, cfg.preserve_color)
        return output.clamp(0, 1).cpu().contiguous()

    def _style_statistics_for(self, styles: Sequence, content_p: Tensor, mask: Tensor | None) -> list:
        """The statistics of each style (images or precomputed) for a prepared content, after the checks
        every stylisation makes: at least one style, no precomputed statistics where colour preservation
        changes the style per content, exactly two styles and no blend weights with a mask."""
        cfg = self.config
        if not styles:
            raise UsageError("give at least one style image")
        if color.uses_style_stage(cfg.preserve_color) and any(isinstance(s, self.representation_type) for s in styles):
            raise UsageError(f"colour preservation {cfg.preserve_color!r} changes the style for each content "
                             "image: pass style images, not precomputed statistics")
        if mask is not None:
            check_mask_styles([tuple(styles)], cfg.style_weights)
        return [s if isinstance(s, self.representation_type) else self._statistics(self.prepare_style(s, content_p))
                for s in styles]

    @torch.inference_mode()
    def stylize_batch(self, contents: Tensor, styles: Sequence[Sequence], *,
                      own_styles: Sequence[Tensor] | None = None) -> Tensor:
        """Stylise B prepared contents (B, 3, H, W) of one size (resized and cropped as the config
        says, e.g. in data-loader workers), content b with each of its K precomputed statistics
        ``styles[b]``: (B, K, 3, H, W) in [0, 1] on the CPU.

        Each content is encoded once for its K styles, and the B·K targets are decoded in one
        batch (a content too large to go whole is done on its own, in tiles where the method tiles).
        No masks, and no colour preservation that changes the style per content. ``own_styles`` is
        accepted for the common interface and unused: alpha blends the prepared content's features.
        """
        check_batch(self.config, contents, styles)
        height, width = contents.shape[-2:]
        padded = pad_to_multiple(contents.to(self.device), FEATURE_STRIDE)  # (B, 3, H', W')
        if self._whole(*padded.shape[-2:]):
            features = self.network.encode(self._network_input(padded)).float()  # (B, C, h, w)
            targets = [self._target(features[b:b + 1], style) for b, group in enumerate(styles) for style in group]
            outputs = self.network.decoder(self._network_input(torch.cat(targets))).float()  # (B·K, 3, H', W')
        else:
            outputs = torch.cat([self._transform(padded[b:b + 1], None, [style])
                                 for b, group in enumerate(styles) for style in group])
        return finish_batch(outputs[:, :, :height, :width].cpu(), contents, len(styles[0]), self.config.preserve_color)

    def _whole(self, height: int, width: int) -> bool:
        """Whether a padded content of this size goes through the networks whole (not in tiles)."""
        return True

    def _target(self, features: Tensor, style) -> Tensor:
        """The transformed (1, C, h, w) relu4_1 features of one whole content for one style."""
        raise NotImplementedError

    def _network_input(self, image: Tensor) -> Tensor:
        return image.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)

    def _prepare_mask(self, mask: Tensor, content: Tensor) -> Tensor:
        """The mask stretched to the content's original size, then resized/cropped like it."""
        mask = resize_to(grayscale(mask).float(), *content.shape[-2:])  # (1, H0, W0)
        return prepare_image(mask, self.config.content_size, self.config.crop).to(self.device)  # (1, H, W)


class AdaINStylizer(DecoderStylizer):
    """One AdaIN model with one config, ready to stylise many content images."""

    label = "AdaIN"
    representation_type = StyleStatistics

    def __init__(self, model: AdaINModel, config: AdaINConfig | None = None, *,
                 device: torch.device | str = "cpu", decoder_info: dict | None = None) -> None:
        super().__init__(model, config or AdaINConfig(), device=device, decoder_info=decoder_info)
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

    def _statistics(self, prepared_style: Tensor) -> StyleStatistics:
        image = prepared_style.unsqueeze(0).to(self.device)  # (1, 3, h, w)
        tile_size = self.tile_size(*image.shape[-2:], style=True)
        if not tile_size:
            mean, std = self.network.style_statistics(self._network_input(image))  # (1, C, 1, 1) each
        else:
            _, (moments,) = self._encode_tiles(image, plan_tiles(*image.shape[-2:], tile_size), None, keep=False)
            mean, std = moments.mean_std(ADAIN_EPS)
        return StyleStatistics(mean, std)

    def _whole(self, height: int, width: int) -> bool:
        return not self.tile_size(height, width)

    def _target(self, features: Tensor, style: StyleStatistics) -> Tensor:
        moments = [ChannelMoments()]
        accumulate(moments, features, None)
        return apply_affines(features, None, region_affines(moments, [style], self.config.alpha, self.smooth_moments))

    def _transform(self, padded, foreground, region_styles):
        """AdaIN as per-region affine maps of the relu4_1 features, in tiles when large."""
        tiles = plan_tiles(*padded.shape[-2:], self.tile_size(*padded.shape[-2:]))
        features, moments = self._encode_tiles(padded, tiles, foreground)
        affines = region_affines(moments, region_styles, self.config.alpha, self.smooth_moments)
        return self._decode_tiles(features, tiles, foreground, affines)  # (1, 3, H', W')

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

def _cells(tile: Box, outer: Box, encoded: Tensor, height: int, width: int) -> Box:
    """A tile's own feature cells. Tiles start on multiples of 8; one ending at the image's edge
    owns every cell the encoder gives up to there (ceil-mode pooling makes a partial cell)."""
    start = outer.scaled(1 / FEATURE_STRIDE)
    bottom = start.top + encoded.shape[-2] if tile.bottom == height else tile.bottom // FEATURE_STRIDE
    right = start.left + encoded.shape[-1] if tile.right == width else tile.right // FEATURE_STRIDE
    return Box(tile.top // FEATURE_STRIDE, tile.left // FEATURE_STRIDE, bottom, right)


