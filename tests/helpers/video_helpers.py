"""Tiny clips for the video tests, written with PyAV on demand (no binary blobs). Clips with known
motion (frames and their true optical flow) are in the library: styletransfer.video.known_motion."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

SAMPLE_RATE = 44_100
TONE_HZ = 440.0


def moving_frames(count: int, height: int = 64, width: int = 96, seed: int = 0) -> list[torch.Tensor]:
    """``count`` (3, H, W) frames of a textured picture that drifts right by 2 px a frame."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width + 2 * count]
    base = np.stack([xs / xs.max(), ys / max(height - 1, 1), 0.5 + 0.5 * np.sin(xs / 5.0 + ys / 7.0)], 0)
    base = np.clip(base * 0.8 + rng.normal(0, 0.08, base.shape), 0, 1).astype(np.float32)
    return [torch.from_numpy(base[:, :, 2 * t:2 * t + width].copy()) for t in range(count)]


def make_clip(path: Path, frames: Sequence[torch.Tensor], *, rate: int = 24, codec: str = "libx264",
              audio: bool = False, pix_fmt: str | None = None, rotation: int = 0,
              milliseconds: Sequence[int] | None = None, colorspace: int | None = None) -> Path:
    """Encode (3, H, W) frames at ``rate`` (or at the given times: a variable frame rate); with
    ``audio`` a stereo AAC tone of the clip's length; ``colorspace`` (FFmpeg's number, e.g. 1 for
    BT.709) tags the stream and converts the frames with it."""
    height, width = frames[0].shape[-2:]
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height = width, height
        video.pix_fmt = pix_fmt or ("yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p")
        if rotation:
            video.set_display_rotation(rotation)
        if colorspace is not None:
            context = video.codec_context
            context.colorspace = context.color_primaries = context.color_trc = colorspace
        sound = container.add_stream("aac", rate=SAMPLE_RATE) if audio else None
        if milliseconds is not None:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        for index, image in enumerate(frames):
            array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if colorspace is not None:
                frame = frame.reformat(format=video.pix_fmt, dst_colorspace=colorspace)
            if milliseconds is not None:
                frame.pts, frame.time_base = milliseconds[index], Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _tone(container, sound, len(frames) / rate)
    return path


def _tone(container, stream, seconds: float) -> None:
    samples = int(SAMPLE_RATE * seconds)
    wave = (0.2 * np.sin(2 * np.pi * TONE_HZ * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
    size = stream.codec_context.frame_size or 1024
    for start in range(0, samples, size):
        chunk = np.stack([wave[start:start + size]] * 2)  # (2, n): planar stereo
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = SAMPLE_RATE, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_audio_only(path: Path, seconds: float = 0.3) -> Path:
    with av.open(str(path), "w") as container:
        _tone(container, container.add_stream("aac", rate=SAMPLE_RATE), seconds)
    return path


def make_unknown_codec(path: Path) -> Path:
    """An AVI whose video stream names a codec no decoder knows (its FourCC overwritten)."""
    make_clip(path, moving_frames(3), codec="mpeg4")
    data = path.read_bytes()
    assert data.count(b"FMP4") >= 1
    path.write_bytes(data.replace(b"FMP4", b"QQQQ"))
    return path


def frame_times(path: Path) -> list[Fraction]:
    """The presentation time of every frame of the first video stream, in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * stream.time_base for frame in container.decode(stream)]


def audio_payloads(path: Path) -> list[bytes]:
    """The bytes of every audio packet, in order (equal lists: the audio was copied untouched)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


