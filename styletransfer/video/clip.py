"""Stylising a clip frame for frame with a feed-forward stylizer (Magenta, AdaIN, WCT).

The styles are represented once per clip (embedded, or their statistics computed), every frame
is stylised with them and written at the clip's own size (a frame stylised at another
``content_size`` is resized back), and with :class:`VideoConfig` ``temporal`` the frames go
through :class:`~styletransfer.video.temporal.TemporalFilter`. Decoding, encoding, audio and the
atomic write are :func:`styletransfer.video.io.transcode`'s.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from torch import Tensor

from .. import color
from ..errors import UsageError
from ..imageio import resize_to
from ..realtime import Stylizer
from .flow import PRESETS, require_opencv
from .io import TranscodeResult, transcode
from .temporal import DEFAULT_BLEND, DEFAULT_FLOW, DEFAULT_MOMENTUM, TemporalFilter


@dataclass
class VideoConfig:
    """How clips are written and whether their flicker is reduced; stored in the clip's metadata."""

    temporal: bool = False  # running statistics and the flow-compensated blend (video.temporal)
    momentum: float = DEFAULT_MOMENTUM  # weight of the past in the running statistics; 0: off
    blend: float = DEFAULT_BLEND  # weight of the previous output, warped by the optical flow; 0: off
    flow: str = DEFAULT_FLOW  # the optical flow's DIS preset (video.flow.PRESETS)
    crf: int | None = None  # encoder quality (H.264, VP9): lower is better, 0 lossless; None: io.CRF

    def validate(self) -> "VideoConfig":
        for flag, value in (("--temporal-momentum", self.momentum), ("--temporal-blend", self.blend)):
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise UsageError(f"{flag} must be in [0, 1), got {value}")
        if self.flow not in PRESETS:
            raise UsageError(f"--temporal-flow must be one of {', '.join(PRESETS)}, got {self.flow!r}")
        if self.crf is not None and (not isinstance(self.crf, int) or self.crf < 0):
            raise UsageError(f"--crf must be an integer ≥ 0, got {self.crf}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


class ClipStylizer:
    """Clips through one feed-forward :class:`~styletransfer.realtime.Stylizer`."""

    def __init__(self, stylizer: Stylizer, config: VideoConfig | None = None) -> None:
        self.stylizer = stylizer
        self.config = (config or VideoConfig()).validate()

    def stylize(self, source: str | os.PathLike, target: str | os.PathLike, styles: Callable[[Tensor], Sequence], *,
                mask: Tensor | None = None, metadata: dict | None = None, progress: bool = False) -> TranscodeResult:
        """Write ``target``, the clip ``source`` stylised. ``styles(first_frame)`` gives the styles'
        representations, once: with coral/histogram colour preservation the styles are matched
        to the clip's first frame (not to every frame, which would change the style as the
        colours of the shot do)."""
        cfg = self.config
        if self.stylizer.config.crop:
            raise UsageError("--crop would change the frame size, and clips keep theirs: drop --crop")
        if cfg.temporal:
            require_opencv()  # the flow's: before any frame is read
        stylizer = _fixed_style(self.stylizer)
        represented: list = []

        def one(frame: Tensor) -> Tensor:
            out = stylizer.stylize(frame, represented, mask=mask)  # (3, H', W')
            return out if out.shape[-2:] == frame.shape[-2:] else resize_to(out, *frame.shape[-2:])

        temporal = TemporalFilter(stylizer, cfg.momentum, cfg.blend, cfg.flow) if cfg.temporal else None

        def process(frame: Tensor) -> Tensor:
            if not represented:
                represented.extend(styles(frame))
                if temporal is not None:
                    stylizer.check_temporal(frame)  # e.g. frames Magenta would tile
            return one(frame) if temporal is None else temporal(frame, one)

        with temporal or nullcontext():
            return transcode(source, target, process, crf=cfg.crf, metadata=metadata, progress=progress)


def _fixed_style(stylizer: Stylizer) -> Stylizer:
    """The stylizer the frames go through. With a colour preservation that changes the style
    (coral, histogram) the styles were matched once, to the first frame, so the frames take them
    as they are: a shallow copy (the same networks) whose config leaves that stage out."""
    if not color.uses_style_stage(stylizer.config.preserve_color):
        return stylizer
    fixed = copy.copy(stylizer)
    fixed.config = dataclasses.replace(stylizer.config, preserve_color=color.NONE)
    return fixed
