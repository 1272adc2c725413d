"""What the real-time (feed-forward) methods share: one interface, settings checks and input preparation.

Every feed-forward stylizer (AdaIN, WCT, Magenta, CIN) is a :class:`Stylizer`, built from a
config and the :class:`Networks` it needs; the front ends call nothing else. The configs take
``alpha``, style blend weights, colour preservation, content and style sizes and a precision
(:func:`check_feedforward_settings`, the one place they are checked); the stylizers resize
inputs by their shorter side (optionally centre-cropped) and pad the content to their networks'
stride so that the output has exactly the content's size.
"""

from __future__ import annotations

import dataclasses
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, ContextManager, Protocol, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import color
from .encoder import DEFAULT_ENCODER, Encoder
from .errors import ImageError, UsageError
from .imageio import MIN_SIDE, resize_edge
from .precision import validate_precision

T = TypeVar("T")


class Stylizer(Protocol):
    """One feed-forward method with one config, ready for many images. A style is represented
    once (``represent_style``: AdaIN's statistics, Magenta's embedding) and reused; ``stylize``
    and ``stylize_batch`` take style images or those representations."""

    config: Any  # the method's config: validate(), to_dict(), and alpha, preserve_color, crop, content_size
    representation_type: ClassVar[type]  # what represent_style returns (a tensor, or a dataclass of tensors)
    uses_own_style: ClassVar[bool]  # alpha < 1 mixes in the content seen as a style (stylize_batch's own_styles)

    def represent_style(self, style: Tensor, content: Tensor | None = None) -> Any:
        """A (3, H, W) style image's representation; ``content`` where colour preservation
        matches the style to it (coral, histogram)."""

    def stylize(self, content: Tensor, styles: Sequence = (), *, mask: Tensor | None = None) -> Tensor:
        """A (3, H, W) content in [0, 1] → (3, H', W') in [0, 1] on the CPU, with style images or
        their representations (a ``mask``, white = foreground: exactly two)."""

    def stylize_batch(self, contents: Tensor, styles: Sequence[Sequence], *,
                      own_styles: Sequence[Tensor] | None = None) -> Tensor:
        """B prepared contents (B, 3, H, W), content b with its K representations ``styles[b]``
        → (B, K, 3, H, W) in [0, 1] on the CPU."""

    def describe(self) -> dict:
        """What image metadata and reports record about the networks (files, hashes, encoder)."""

    def check_temporal(self, frame: Tensor) -> None:
        """Refuse, with the remedy, frames of this size that ``--temporal`` cannot smooth."""


def own_networks(load: Callable[..., Stylizer]) -> Callable[[Any, "Networks", torch.device], Stylizer]:
    """The build of a method that brings its own networks (pinned files): ``load(config, device=)``;
    the :class:`Networks` of ``--weights``/``--decoder`` are not read."""
    def build(config, networks: Networks, device: torch.device) -> Stylizer:
        return load(config, device=device)

    return build


@dataclass(frozen=True)
class Networks:
    """What a feed-forward method's stylizer may be built from; each method takes what it needs
    (``Method.needs_encoder``, ``needs_decoder``) and brings any other networks itself."""

    weights: str | Encoder = DEFAULT_ENCODER  # the encoder: a source name or file, or a loaded encoder
    pooling: str | None = None  # of a VGG19 encoder loaded from ``weights``; None: the weights'
    decoder: str | os.PathLike | nn.Module | None = None  # an AdaIN decoder; None: the shipped one, if any


def check_feedforward_settings(config) -> None:
    """The settings every feed-forward config has (alpha, style_weights, preserve_color,
    content_size, style_size where there are style images, precision), each refused with a usage
    error when out of range."""
    if not (isinstance(config.alpha, (int, float)) and 0.0 <= config.alpha <= 1.0):  # the one alpha check
        raise UsageError(f"--alpha must be between 0 and 1, got {config.alpha}")
    weights = config.style_weights
    if weights is not None and (any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0):
        raise UsageError(f"style interpolation weights must be ≥ 0 with a positive sum, got {weights}")
    color.get(config.preserve_color)
    for flag, field in (("--content-size", "content_size"), ("--style-size", "style_size")):
        size = getattr(config, field, 0)  # a method without style images (cin) has no style_size
        if size != 0 and size < MIN_SIDE:
            raise UsageError(f"{flag} must be 0 (keep the original size) or ≥ {MIN_SIDE}, got {size}")
    validate_precision(config.precision)


def smoothing_scope(hook, name: str) -> ContextManager[None]:
    """A block whose statistics a ``--temporal`` ``hook`` (a stylizer's ``smooth_moments``; None:
    off, a do-nothing block) averages under their own keys ``name``: a stylisation that runs its
    networks once per style (Magenta with a mask) keeps one running average per style."""
    return nullcontext() if hook is None else hook.scope(name)


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


def pad_to_multiple(image: Tensor, multiple: int) -> Tensor:
    """Reflect-pad a (N, C, H, W) batch at the bottom and right to multiples of ``multiple``."""
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return image
    return F.pad(image, (0, pad_w, 0, pad_h), mode="reflect")  # (N, C, H + pad_h, W + pad_w)


def check_prepared(image: Tensor, what: str, flag: str, method: str) -> Tensor:
    """``image`` when its shorter side is at least MIN_SIDE after resizing; else a one-line error."""
    if min(image.shape[-2:]) < MIN_SIDE:
        raise ImageError(f"the {what} image is {image.shape[-1]}x{image.shape[-2]} after resizing, smaller "
                         f"than the {MIN_SIDE}px {method} needs: use a larger image or {flag}")
    return image


def weighted_average(items: Sequence[T], weights: Sequence[float] | None = None) -> T:
    """Σ w_i·x_i with the weights normalised to sum 1 (equal when not given): how every
    feed-forward method blends several styles. ``items`` are tensors, or dataclasses of tensors
    (AdaIN's (μ, σ), WCT's (μ, Σ)) averaged field by field."""
    if weights is None:
        if len(items) == 1:
            return items[0]
        weights = [1.0] * len(items)
    if len(weights) != len(items):
        raise UsageError(f"{len(weights)} style interpolation weights for {len(items)} styles: give one per style")
    shares = [w / float(sum(weights)) for w in weights]
    if dataclasses.is_dataclass(items[0]):
        return type(items[0])(**{field.name: sum(share * getattr(item, field.name) for share, item in zip(shares, items))
                                 for field in dataclasses.fields(items[0])})
    return sum(share * item for share, item in zip(shares, items))


def check_batch(config, contents: Tensor, styles: Sequence[Sequence]) -> int:
    """K, the styles per content of a ``stylize_batch`` call (B contents, each with its K style
    representations), after the checks every method makes: as many groups as contents, K the
    same for all, no colour preservation that changes the style per content."""
    if color.uses_style_stage(config.preserve_color):
        raise UsageError(f"colour preservation {config.preserve_color!r} changes the style for each content: "
                         "stylise one content at a time")
    count = len(styles[0]) if styles else 0
    if not count or len(styles) != contents.shape[0] or any(len(group) != count for group in styles):
        raise UsageError("stylize_batch: give each content the same number (≥ 1) of style representations")
    return count


def finish_batch(outputs: Tensor, contents: Tensor, count: int, preserve_color: str | None) -> Tensor:
    """(B·K, 3, H, W) outputs of B contents with K styles each → (B, K, 3, H, W) in [0, 1], after
    an output-stage colour preservation against each output's own content."""
    if color.uses_output_stage(preserve_color):
        outputs = torch.stack([color.finish_output(image, contents[index // count].to(image.device), preserve_color)
                               for index, image in enumerate(outputs)])
    return outputs.clamp(0, 1).reshape(contents.shape[0], count, *outputs.shape[1:])
