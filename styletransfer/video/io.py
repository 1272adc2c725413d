"""Reading and writing video clips with PyAV, which ships FFmpeg's libraries in its wheel.

Install with ``pip install -e ".[video]"``. A clip is recognised by its extension
(:data:`VIDEO_EXTENSIONS`) and then validated by opening it and decoding its first frame
(:func:`probe`). Frames come as (3, H, W) float32 tensors in [0, 1], as images do
(:mod:`styletransfer.imageio`), turned upright when the clip carries a display rotation (as
EXIF orientation is applied to images).

:func:`transcode` writes a clip frame for frame: every decoded frame goes through a function and
is re-encoded with its own timestamp (so the frame count and the frame rate, constant or
variable, are kept), every audio stream is copied packet for packet (never re-encoded), the
colour tags (matrix, range, primaries, transfer) are carried over, and the whole is written to a
temporary file beside the target and renamed on success (:func:`styletransfer.files.atomic_write`),
so an interrupted run leaves no half-written clip. Subtitle and data streams are not copied.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from ..errors import ImageError, UsageError
from ..files import atomic_write
from ..imageio import DEFAULT_MAX_PIXELS, MIN_SIDE, check_output_path, to_pil

INSTALL_HINT = 'pip install -e ".[video]"'


class VideoError(ImageError):
    """A clip that cannot be read or written, or PyAV missing."""


@dataclass(frozen=True)
class Container:
    """A container we write: FFmpeg's muxer name, its video encoders, best first (the first one
    this FFmpeg build has is used), and whether it holds only a constant frame rate (then frames
    are numbered at the average rate instead of keeping their timestamps)."""

    format: str
    codecs: tuple[str, ...]
    constant_rate: bool = False


CONTAINERS = {
    ".mp4": Container("mp4", ("libx264", "mpeg4")),
    ".m4v": Container("mp4", ("libx264", "mpeg4")),
    ".mov": Container("mov", ("libx264", "mpeg4")),
    ".mkv": Container("matroska", ("libx264", "libvpx-vp9", "mpeg4")),
    ".webm": Container("webm", ("libvpx-vp9", "libvpx")),
    ".avi": Container("avi", ("mpeg4",), constant_rate=True),
}
READ_ONLY_EXTENSIONS = (".mpg", ".mpeg", ".ts", ".m2ts", ".mts", ".flv", ".wmv", ".ogv", ".3gp")
VIDEO_EXTENSIONS = (*CONTAINERS, *READ_ONLY_EXTENSIONS)
FALLBACK_EXTENSION = ".mp4"  # folder mode: the output of a clip whose container we only read
# Constant quality (CRF) per encoder, the default and the largest: lower is better, 0 is lossless.
CRF = {"libx264": 18, "libvpx-vp9": 24, "libvpx": 10}
MAX_CRF = {"libx264": 51, "libvpx-vp9": 63, "libvpx": 63}
MPEG4_QSCALE = 3  # MPEG-4 Part 2 (.avi) has no CRF: a fixed quantiser, 2 (best) to 31
UNSPECIFIED_COLORSPACE, UNSPECIFIED_RANGE = 2, 0  # FFmpeg's AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_UNSPECIFIED
QUARTER_TURN = 90


def require_av():
    """The ``av`` module, or a one-line error naming the extra that installs it."""
    try:
        import av
    except ImportError:
        raise VideoError(f"video needs PyAV, which is not installed: {INSTALL_HINT}") from None
    return av


def is_clip(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` names a video clip (by its extension; :func:`probe` validates it)."""
    return path is not None and Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_clips(folder: str | os.PathLike) -> list[Path]:
    """Clips (by extension) directly in ``folder``, sorted."""
    return sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def output_suffix(clip: Path) -> str:
    """The output extension for a clip in folder mode: its own, where we write that container."""
    suffix = clip.suffix.lower()
    return suffix if suffix in CONTAINERS else FALLBACK_EXTENSION


def check_clip_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Validate a clip's output path before any work: a container we write, not an input."""
    return check_output_path(path, inputs, formats=CONTAINERS, kind="video clip", example="out.mp4")


def check_audio_copy(source: str | os.PathLike, audio: Iterable[str], target: str | os.PathLike) -> None:
    """Refuse, before any work, a target container that cannot hold the source's audio codecs
    (audio is copied as it is, never re-encoded)."""
    audio = tuple(audio)
    if not audio:
        return
    av = require_av()
    suffix = Path(target).suffix.lower()
    with av.open(io.BytesIO(), "w", format=CONTAINERS[suffix].format) as container:
        refused = [codec for codec in audio if codec not in container.supported_codecs]
    if refused:
        raise VideoError(f"{str(source)!r} has {', '.join(refused)} audio, which {suffix} cannot hold (audio is "
                         f"copied, not re-encoded): write .mkv or .mp4 instead")


@dataclass(frozen=True)
class ClipInfo:
    """What :func:`probe` found: the upright frame size, the frame count (0 when the container
    does not say), the average frame rate (None when unknown), the codecs."""

    width: int
    height: int
    frames: int
    rate: Fraction | None
    codec: str
    audio: tuple[str, ...]


def probe(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ClipInfo:
    """Open a clip and decode its first frame; a one-line :class:`VideoError` when it is not a
    readable clip, has no video stream, no decoder for its codec, or frames above ``max_pixels``."""
    av = require_av()
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise VideoError(f"{name!r} does not exist or is not a file: check the path")
    try:
        with av.open(name) as container:
            if not container.streams.video:
                raise VideoError(f"{name!r} has no video stream (audio only?): pass a clip with pictures")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise VideoError(f"{name!r}: PyAV's FFmpeg has no decoder for its video codec; convert it first, "
                                 f"e.g. ffmpeg -i {path.name} -c:v libx264 {path.stem}.mp4")
            width, height = stream.codec_context.width, stream.codec_context.height
            _check_pixels(name, width, height, max_pixels)
            first = next(iter(container.decode(stream)), None)
            if first is None:
                raise VideoError(f"{name!r} holds no decodable frame (empty or truncated clip)")
            rotated = round(first.rotation / QUARTER_TURN) % 2 == 1
            width, height = (first.height, first.width) if rotated else (first.width, first.height)
            audio = tuple(s.codec_context.name for s in container.streams.audio if s.codec_context is not None)
            return ClipInfo(width, height, stream.frames, stream.average_rate or stream.guessed_rate,
                            stream.codec_context.name, audio)
    except av.error.FFmpegError as error:
        raise VideoError(f"{name!r} is not a clip PyAV can read ({_reason(error)})") from None


def _check_pixels(name: str, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise VideoError(f"{name!r} has {width}x{height} = {width * height} pixel frames, above the limit of "
                         f"{max_pixels}: pass --max-pixels {width * height} if you trust the file")
    if min(width, height) < MIN_SIDE:
        raise VideoError(f"{name!r} has {width}x{height} frames, smaller than the {MIN_SIDE}px the networks need")


def _reason(error: Exception) -> str:
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__)[:120]


def frame_tensor(frame) -> Tensor:
    """A decoded ``av.VideoFrame`` → (3, H, W) float32 in [0, 1], upright."""
    rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None)  # (H, W, 3) uint8
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)
    turns = round(frame.rotation / QUARTER_TURN) % 4  # counter-clockwise, as the display matrix says
    return torch.rot90(image, turns, dims=(1, 2)).contiguous() if turns else image


def read_frames(path: str | os.PathLike) -> Iterator[Tensor]:
    """Every frame of a clip's first video stream, (3, H, W) in [0, 1], in presentation order."""
    av = require_av()
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            yield frame_tensor(frame)


def read_clip_metadata(path: str | os.PathLike) -> dict:
    """The settings :func:`transcode` stored in a clip (empty when there are none)."""
    av = require_av()
    with av.open(str(path)) as container:
        tags = {key.lower(): value for key, value in container.metadata.items()}  # Matroska upper-cases them
    try:
        return json.loads(tags.get("comment", "")).get("styletransfer", {})
    except (ValueError, AttributeError):
        return {}


class _VideoEncoder:
    """One video stream of an output container: picks the encoder, pixel format and quality, and
    encodes (3, H, W) tensors with the timestamps it is given."""

    def __init__(self, container, suffix: str, width: int, height: int, rate: Fraction, *,
                 time_base: Fraction | None = None, crf: int | None = None, colour=None) -> None:
        av = require_av()
        codec = check_encoder(suffix, crf)
        self.container = container
        self.stream = container.add_stream(codec, rate=rate, options=_quality_options(codec, crf))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = _pixel_format(av.Codec(codec, "w"), width, height, lossless=crf == 0)
        context = self.stream.codec_context
        if time_base is not None:
            self.stream.time_base = context.time_base = time_base
        if codec == "mpeg4":
            context.qscale = MPEG4_QSCALE
        self.colorspace = self.color_range = None
        if colour is not None:  # the source's tags, so that players show the same colours
            for tag in ("colorspace", "color_range", "color_primaries", "color_trc"):
                setattr(context, tag, getattr(colour, tag))
            self.colorspace = colour.colorspace if colour.colorspace != UNSPECIFIED_COLORSPACE else None
            self.color_range = colour.color_range if colour.color_range != UNSPECIFIED_RANGE else None
        self.codec, self.frames = codec, 0

    def encode(self, image: Tensor, pts: int | None = None, time_base: Fraction | None = None) -> None:
        av = require_av()
        frame = av.VideoFrame.from_image(to_pil(image)).reformat(
            format=self.stream.pix_fmt, dst_colorspace=self.colorspace, dst_color_range=self.color_range)
        frame.pts = self.frames if pts is None else pts
        if time_base is not None:
            frame.time_base = time_base
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))  # the frames the encoder still holds


def check_encoder(suffix: str, crf: int | None = None) -> str:
    """The video encoder that writes ``suffix`` here (the container's first that this FFmpeg build
    has), with ``crf`` checked against its range; one-line errors otherwise."""
    av = require_av()
    codec = next((c for c in CONTAINERS[suffix].codecs if c in av.codecs_available), None)
    if codec is None:
        raise VideoError(f"this FFmpeg build has none of {', '.join(CONTAINERS[suffix].codecs)} to write "
                         f"{suffix}: choose another container (.mp4, .mkv, .webm)")
    if crf is not None and codec in MAX_CRF and not 0 <= crf <= MAX_CRF[codec]:
        raise UsageError(f"--crf for {codec} ({suffix}) must be between 0 and {MAX_CRF[codec]}, got {crf}")
    return codec


def _quality_options(codec: str, crf: int | None) -> dict[str, str]:
    if codec not in CRF:
        return {}
    crf = CRF[codec] if crf is None else crf
    if codec.startswith("libvpx"):
        return {"lossless": "1"} if crf == 0 and codec == "libvpx-vp9" else {"crf": str(crf), "b": "0"}
    return {"crf": str(crf)}


def _pixel_format(codec, width: int, height: int, *, lossless: bool) -> str:
    """4:2:0 (what every player decodes) for even sizes; 4:4:4 for odd sizes (4:2:0 needs even
    ones) and for lossless output, where the encoder has it."""
    formats = {f.name for f in codec.video_formats or ()}
    if (lossless or width % 2 or height % 2) and "yuv444p" in formats:
        return "yuv444p"
    return "yuv420p"


def write_clip(path: str | os.PathLike, frames: Iterable[Tensor], rate: float | Fraction, *,
               crf: int | None = None) -> Path:
    """Write (3, H, W) frames as a clip at a constant ``rate`` (atomically; no audio)."""
    av = require_av()
    path = check_clip_output(path)
    suffix = path.suffix.lower()

    def write(stream) -> None:
        with av.open(stream, "w", format=CONTAINERS[suffix].format) as output:
            encoder = None
            for image in frames:
                if encoder is None:
                    encoder = _VideoEncoder(output, suffix, image.shape[-1], image.shape[-2],
                                            Fraction(rate).limit_denominator(100_000), crf=crf)
                encoder.encode(image)
            if encoder is None:
                raise VideoError(f"no frames to write to {str(path)!r}")
            encoder.close()

    return atomic_write(path, write)


@dataclass(frozen=True)
class TranscodeResult:
    frames: int
    size: tuple[int, int]  # (width, height) of the written frames
    rate: Fraction | None
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def transcode(source: str | os.PathLike, target: str | os.PathLike, process: Callable[[Tensor], Tensor], *,
              crf: int | None = None, metadata: dict | None = None, progress: bool = False) -> TranscodeResult:
    """Decode ``source``, pass every frame through ``process`` ((3, H, W) → (3, H', W'), the same
    size for every frame), encode the results to ``target`` with the source's timestamps, frame
    rate and colour tags, and copy its audio streams. ``metadata`` goes into the container's
    ``comment`` tag as JSON under the key ``styletransfer``, as images carry it."""
    av = require_av()
    source, target = Path(source), check_clip_output(target, [source])
    suffix = target.suffix.lower()
    start = time.perf_counter()
    state: dict = {}

    def write(stream) -> None:
        with av.open(str(source)) as inputs, av.open(stream, "w", format=CONTAINERS[suffix].format) as output:
            video = inputs.streams.video[0]
            rate = video.average_rate or video.guessed_rate
            step = max(1, round(1 / (rate * video.time_base))) if rate and video.time_base else 1  # pts per frame
            time_base = None if CONTAINERS[suffix].constant_rate else video.time_base  # None: number the frames
            copies = {s.index: output.add_stream_from_template(s) for s in inputs.streams.audio}  # not re-encoded
            if metadata is not None:
                output.metadata["comment"] = json.dumps({"styletransfer": metadata}, default=str, sort_keys=True)
            encoder, pending, pts = None, [], None  # audio waits until the video stream exists
            with _frame_bar(video.frames, source.name, progress) as bar:
                for packet in _demux(inputs, [video, *inputs.streams.audio], source):
                    if packet.stream.index in copies:
                        if packet.dts is None:  # a flush packet carries nothing
                            continue
                        packet.stream = copies[packet.stream.index]
                        if encoder is None:
                            pending.append(packet)
                        else:
                            output.mux(packet)
                        continue
                    for frame in _decode(packet, source):
                        image = process(frame_tensor(frame))
                        if encoder is None:  # the first frame gives the size; then the header can be written
                            encoder = _VideoEncoder(output, suffix, image.shape[-1], image.shape[-2],
                                                    rate or Fraction(25), time_base=time_base, crf=crf, colour=frame)
                            output.mux(pending)
                        pts = frame.pts if frame.pts is not None else 0 if pts is None else pts + step
                        encoder.encode(image, None if time_base is None else pts, time_base)
                        bar.update(1)
            if encoder is None:
                raise VideoError(f"{str(source)!r} holds no decodable frame")
            encoder.close()
            state.update(frames=encoder.frames, size=(encoder.stream.width, encoder.stream.height), rate=rate)

    try:
        atomic_write(target, write)
    except (av.error.FFmpegError, ValueError) as error:  # PyAV refuses a codec the container cannot hold
        raise VideoError(f"cannot write {str(target)!r}: {_reason(error)}") from None
    except OSError as error:
        raise VideoError(f"cannot write {str(target)!r}: {error.strerror or error} "
                         "(check free space and permissions)") from None
    return TranscodeResult(state["frames"], state["size"], state["rate"], time.perf_counter() - start)


def _demux(container, streams, source: Path):
    try:
        yield from container.demux(*streams)
    except require_av().error.FFmpegError as error:
        raise VideoError(f"cannot read {str(source)!r}: {_reason(error)} (truncated or corrupt clip)") from None


def _decode(packet, source: Path):
    """The frames of a packet (the last, empty packet of a stream flushes its decoder)."""
    try:
        return packet.decode()
    except require_av().error.FFmpegError as error:
        raise VideoError(f"cannot decode {str(source)!r}: {_reason(error)} (truncated or corrupt clip)") from None


def _frame_bar(total: int, name: str, enabled: bool):
    """A tqdm bar counting frames (a silent stand-in when not ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total or None, desc=name, unit="frame", leave=False, disable=not enabled)
