"""Feed-forward stylisation with Magenta's networks (``stylize --method magenta``).

style → predictor → 100-d embedding e; content + e → transformer → image. Several styles are
mixed in embedding space (e = Σ w_i e_i), and ``alpha`` interpolates with the content's own
embedding as the original does: e = α·e_style + (1 − α)·e_content (the content resized like a
style, to ``style_size``, before it is embedded). The transformer runs at the
content's own resolution (it is fully convolutional: no fixed 384² input, no upscaling); the
content is reflect-padded to a multiple of 4 (its two stride-2 convs) and the output cropped
back, so the output has exactly the content's size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import Tensor

from .. import color
from ..errors import UsageError
from ..imageio import check_mask_styles, grayscale, resize_to
from ..precision import DEFAULT_PRECISION, check_precision
from ..realtime import (
    check_batch,
    check_feedforward_settings,
    finish_batch,
    pad_to_multiple,
    prepare_image,
    smoothing_scope,
    weighted_average,
)
from ..tiling import DEFAULT_TILE_SIZE, TILE_THRESHOLD_PIXELS, check_tile_size
from .networks import TRANSFORMER_STRIDE, StylePredictor, StyleTransformer
from .tiles import tiled_transform
from .weights import load_predictor, load_transformer, networks_info

STYLE_SIZE = 256  # the predictor was trained on 256² styles (shorter side here; aspect kept)
MIN_TILE_SIZE = 16
CONTENT_SIZE = 0  # keep the content's size


@dataclass
class MagentaConfig:
    """Every setting of a ``--method magenta`` run; stored whole in reports and image metadata."""

    alpha: float = 1.0  # 0: the content's own embedding; 1: the style's
    style_weights: tuple[float, ...] | None = None  # mixing weights of several styles; default equal
    preserve_color: str = color.NONE
    content_size: int = CONTENT_SIZE  # shorter side; 0 keeps the original size
    style_size: int = STYLE_SIZE  # shorter side; 0 keeps the original size
    crop: bool = False  # centre crop to a square after resizing
    precision: str = DEFAULT_PRECISION  # fp32, or bf16 networks
    tile_size: int | None = None  # pixels a side; None: automatic above TILE_THRESHOLD_PIXELS; 0: never

    def validate(self) -> "MagentaConfig":
        check_feedforward_settings(self)
        check_tile_size(self.tile_size, TRANSFORMER_STRIDE, MIN_TILE_SIZE)
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def mix_embeddings(embeddings: Sequence[Tensor], weights: Sequence[float] | None = None) -> Tensor:
    """Σ w_i e_i with the weights normalised to sum 1 (equal when not given)."""
    return weighted_average(embeddings, weights)


class MagentaStylizer:
    """Magenta's predictor and transformer with a ``MagentaConfig``; the networks are frozen.
    A :class:`~styletransfer.realtime.Stylizer`: a style is represented by its embedding (100,)."""

    representation_type = Tensor
    uses_own_style = True  # alpha < 1 mixes in the content's own embedding
    # a hook on the content's own embedding (alpha < 1): ``smooth("content_embedding", e)`` gives
    # the one used; set per clip by --temporal (styletransfer.video.temporal); None: off
    smooth_moments = None

    def __init__(self, predictor: StylePredictor, transformer: StyleTransformer, config: MagentaConfig | None = None,
                 *, device: torch.device | str = "cpu") -> None:
        self.config = (config or MagentaConfig()).validate()
        self.device = torch.device(device)
        dtype = check_precision(self.config.precision, self.device)
        self.predictor = predictor.to(self.device, dtype).eval().requires_grad_(False)
        # NHWC: the same result up to float rounding, 1.3x faster at 1024² on a 2-core CPU
        self.transformer = transformer.to(self.device, dtype, memory_format=torch.channels_last).eval()
        self.transformer.requires_grad_(False)
        self.dtype = dtype

    def describe(self) -> dict:
        return {"networks": networks_info()}

    def check_temporal(self, frame: Tensor) -> None:
        """The tiled path normalises its expand layers with statistics streamed over tiles, which
        the running statistics of ``--temporal`` do not reach: with it, frames go whole."""
        padded = pad_to_multiple(self.prepare_content(frame).unsqueeze(0), TRANSFORMER_STRIDE)  # (1, 3, H', W')
        if self.tile_size(*padded.shape[-2:]):
            raise UsageError(f"--temporal smooths the statistics of whole frames, and these {frame.shape[-1]}x"
                             f"{frame.shape[-2]} frames would be tiled: pass --tile-size 0 (or a smaller "
                             "--content-size)")

    def prepare_content(self, content: Tensor) -> Tensor:
        return prepare_image(content, self.config.content_size, self.config.crop)

    @torch.no_grad()
    def embed(self, image: Tensor) -> Tensor:
        """The style embedding (100,) of a (3, H, W) image used as it is."""
        batch = image.unsqueeze(0).to(self.device, self.dtype)  # (1, 3, H, W)
        return self.predictor(batch)[0].float()  # (100,)

    def represent_style(self, style: Tensor, content: Tensor | None = None) -> Tensor:
        """The embedding of a style image after resizing (and colour matching to ``content``,
        when the config preserves colour in the style stage)."""
        style = prepare_image(style, self.config.style_size, self.config.crop)
        if content is not None:
            style = color.prepare_style(style, self.prepare_content(content), self.config.preserve_color)
        return self.embed(style)

    style_embedding = represent_style  # the name before every stylizer had ``represent_style``

    def tile_size(self, height: int, width: int) -> int:
        """The tile side for a (padded) content of this size; 0 when it is processed whole."""
        if self.config.tile_size is not None:
            return self.config.tile_size
        return DEFAULT_TILE_SIZE if height * width > TILE_THRESHOLD_PIXELS else 0

    @torch.no_grad()
    def transform(self, content: Tensor, embedding: Tensor) -> Tensor:
        """The transformer on a prepared (3, H, W) content: (3, H, W) of the same size; in tiles
        with streamed norm statistics (``tiles.tiled_transform``) for large contents."""
        height, width = content.shape[-2:]
        batch = pad_to_multiple(content.unsqueeze(0).to(self.device, self.dtype), TRANSFORMER_STRIDE)
        batch = batch.contiguous(memory_format=torch.channels_last)  # (1, 3, H', W')
        embedding = embedding.to(self.device, self.dtype).unsqueeze(0)  # (1, 100)
        tile = self.tile_size(*batch.shape[-2:])
        if tile:
            out = tiled_transform(self.transformer, batch, embedding, tile)  # (1, 3, H', W')
        else:
            out = self.transformer(batch, embedding)  # (1, 3, H', W')
        return out[0, :, :height, :width].float().cpu()

    @torch.no_grad()
    def stylize_batch(self, contents: Tensor, embeddings: Sequence[Sequence[Tensor]], *,
                      own_styles: Sequence[Tensor] | None = None) -> Tensor:
        """Stylise B prepared contents (B, 3, H, W) of one size (resized and cropped as the config
        says, e.g. in data-loader workers), content b with each of its K style embeddings
        ``embeddings[b]``: (B, K, 3, H, W) in [0, 1] on the CPU.

        The B·K pairs go through the transformer as one batch (a content too large to go whole is
        done on its own, in tiles). With ``alpha`` < 1 each content's own embedding is that of
        ``own_styles[b]``: the content prepared as a style from its original file, as ``stylize``
        does (the data loader's ``own_size``); without them, of the prepared content resized
        again, which differs where the content was resized. No masks, and no colour preservation
        that changes the style per content.
        """
        cfg = self.config
        count, (height, width) = check_batch(cfg, contents, embeddings), contents.shape[-2:]
        mixed = torch.stack([e for group in embeddings for e in group]).to(self.device)  # (B·K, 100)
        if cfg.alpha < 1:
            if own_styles is None:
                own = self.predictor(prepare_image(contents, cfg.style_size, cfg.crop).to(self.device, self.dtype))
            else:
                own = torch.stack([self.embed(image) for image in own_styles])  # (B, 100)
            mixed = cfg.alpha * mixed + (1 - cfg.alpha) * own.float().repeat_interleave(count, 0)
        batch = pad_to_multiple(contents.to(self.device, self.dtype), TRANSFORMER_STRIDE)  # (B, 3, H', W')
        if self.tile_size(*batch.shape[-2:]):
            images = [self.transform(contents[index // count], e) for index, e in enumerate(mixed)]
            outputs = torch.stack(images)  # (B·K, 3, H, W)
        else:
            batch = batch.repeat_interleave(count, 0).contiguous(memory_format=torch.channels_last)
            outputs = self.transformer(batch, mixed.to(self.dtype))[:, :, :height, :width].float().cpu()
        return finish_batch(outputs, contents, count, cfg.preserve_color)

    def _pass(self, content: Tensor, embedding: Tensor, scope: str) -> Tensor:
        """:meth:`transform` with the norms' statistics smoothed apart from the other passes
        (``--temporal``: each style's pass keeps its own running averages)."""
        with smoothing_scope(self.smooth_moments, scope):
            return self.transform(content, embedding)

    def stylize(self, content: Tensor, styles: Sequence[Tensor] = (), *, mask: Tensor | None = None) -> Tensor:
        """Stylise a (3, H, W) content with style images or precomputed embeddings (100,).

        With ``mask`` (exactly two styles; white = the first): one pass per style, composited by
        the mask's grey level (the conditional norms see the whole image in each pass).
        """
        cfg = self.config
        if not styles:
            raise UsageError("give at least one style image")
        prepared = self.prepare_content(content)
        embeddings = [s if s.dim() == 1 else self.represent_style(s, content) for s in styles]
        own = self.represent_style(content) if cfg.alpha < 1 else None  # the content seen as a style
        if own is not None and self.smooth_moments is not None:
            (own,) = self.smooth_moments("content_embedding", own)

        def with_alpha(embedding: Tensor) -> Tensor:
            return embedding if own is None else cfg.alpha * embedding + (1 - cfg.alpha) * own

        if mask is None:
            image = self.transform(prepared, with_alpha(mix_embeddings(embeddings, cfg.style_weights)))
        else:
            check_mask_styles([tuple(embeddings)], cfg.style_weights)
            foreground, background = (self._pass(prepared, with_alpha(e), f"style{index}")
                                      for index, e in enumerate(embeddings))
            stretched = resize_to(grayscale(mask), *content.shape[-2:])  # (1, H0, W0): the content's size
            weight = self.prepare_content(stretched).clamp(0, 1)  # (1, H, W), resized/cropped like the content
            image = weight * foreground + (1 - weight) * background
        if color.uses_output_stage(cfg.preserve_color):
            image = color.finish_output(image, prepared, cfg.preserve_color)
        return image.clamp(0, 1)


def load_stylizer(config: MagentaConfig | None = None, *, device: torch.device | str = "cpu") -> MagentaStylizer:
    predictor, _ = load_predictor()
    transformer, _ = load_transformer()
    return MagentaStylizer(predictor, transformer, config, device=device)
