"""Tiny clips for the video tests, written with PyAV on demand (no binary blobs), and clips with
known motion built from the sample pictures (frames and their true optical flow)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import torch

from styletransfer.imageio import load_image, resize_to
from styletransfer.video.flow import pixel_grid, sample

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


# --- clips with known motion (for the optical flow tests) ---------------------------------------

PICTURES = Path("assets/content")


@dataclass
class KnownMotion:
    """A clip whose motion is known. ``flows[t]`` is the true flow w of the pair (t, t + 1) in
    styletransfer.video.flow's convention, frames[t + 1](p) = frames[t](p + w(p)), and
    ``forward[t]`` the true forward flow f, frames[t](q) = frames[t + 1](q + f(q)); both None
    across a scene cut. ``objects`` (H, W) bool per frame: where the moving object is, if any."""

    frames: list[torch.Tensor]
    flows: list[torch.Tensor | None]
    forward: list[torch.Tensor | None]
    objects: list[torch.Tensor] | None = None

    @property
    def cuts(self) -> list[int]:
        """The pairs (index of their first frame) that span a scene cut."""
        return [t for t, flow in enumerate(self.flows) if flow is None]


@functools.lru_cache(maxsize=None)
def _picture(name: str, size: int) -> torch.Tensor:
    image = load_image(PICTURES / f"{name}.jpg")  # (3, H, W)
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return resize_to(image[:, top:top + side, left:left + side], size, size)


def picture(name: str, size: int) -> torch.Tensor:
    """The sample content picture ``name`` (astronaut, chelsea, coffee, rocket), its central square
    resized to size x size (antialiased), (3, size, size) in [0, 1]."""
    return _picture(name, size).clone()


def _affine(t: int, scale: float, degrees: float, step: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Frame t's map from its centred pixel coordinates to the source's: (A_t, d_t) with
    A_t = scale^−t R(−t·degrees) and d_t = t·step, (x, y) order."""
    angle = -math.radians(degrees) * t
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return rotation / scale**t, np.array(step, dtype=np.float64) * t


def _affine_flow(size: int, to: tuple[np.ndarray, np.ndarray], source: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
    """The true flow pulling the frame with map ``source`` onto the grid of the frame with map
    ``to``: p + w(p) = c + A_s⁻¹(A_t (p − c) + d_t − d_s), (2, size, size) float32."""
    (a_to, d_to), (a_source, d_source) = to, source
    centred = pixel_grid(size, size, dtype=torch.float64).flatten(1).numpy() - (size - 1) / 2  # (2, P)
    landed = np.linalg.solve(a_source, a_to @ centred + (d_to - d_source)[:, None])  # (2, P)
    return torch.from_numpy(landed - centred).reshape(2, size, size).float()


def affine_clip(count: int = 4, size: int = 64, *, scale: float = 1.0, degrees: float = 0.0,
                step: tuple[float, float] = (0.0, 0.0), name: str = "coffee") -> KnownMotion:
    """A camera move over the picture ``name``: each frame zooms in by ``scale``, turns the view
    by ``degrees`` (the picture rotates clockwise on screen) and pans by ``step`` = (dx, dy)
    pixels (the picture moves by −step) about the frame's centre, compared with the previous one.
    Frame t(p) = source(A_t (p − c) + d_t + c_source), bilinear from a source picture large
    enough that every frame lies inside it."""
    maps = [_affine(t, scale, degrees, step) for t in range(count)]
    margin = max(abs(v) for v in step) * count + size * 0.45  # rotation: the corners reach 0.71·size
    source = picture(name, int(size + 2 * margin))  # (3, S, S)
    centred = pixel_grid(size, size, dtype=torch.float64).flatten(1).numpy() - (size - 1) / 2  # (2, P)
    frames = []
    for a, d in maps:
        points = a @ centred + d[:, None] + (source.shape[-1] - 1) / 2  # (2, P)
        frame, inside = sample(source, torch.from_numpy(points).reshape(2, size, size).float())
        assert bool(inside.all()), "the source picture is too small for this motion"
        frames.append(frame.clamp(0, 1))
    flows = [_affine_flow(size, after, before) for before, after in zip(maps[:-1], maps[1:])]
    forward = [_affine_flow(size, before, after) for before, after in zip(maps[:-1], maps[1:])]
    return KnownMotion(frames, flows, forward)


def object_clip(count: int = 4, size: int = 64, *, object_size: int = 20, step: tuple[int, int] = (3, 2),
                background: str = "coffee", thing: str = "astronaut") -> KnownMotion:
    """A textured square (the middle of picture ``thing``) moving by ``step`` = (dx, dy) whole
    pixels a frame over a still picture ``background``, from near the top left. Inside the
    square the true flow is −step, elsewhere 0; the strip it uncovers in each frame showed the
    square in the previous one (a disocclusion)."""
    frames, objects = [], []
    patch = picture(thing, 2 * object_size)[:, object_size // 2:object_size // 2 + object_size,
                                            object_size // 2:object_size // 2 + object_size]
    still = picture(background, size)
    for t in range(count):
        left, top = size // 8 + t * step[0], size // 8 + t * step[1]
        assert left + object_size <= size and top + object_size <= size, "the square leaves the frame"
        frame, where = still.clone(), torch.zeros(size, size, dtype=torch.bool)
        frame[:, top:top + object_size, left:left + object_size] = patch
        where[top:top + object_size, left:left + object_size] = True
        frames.append(frame)
        objects.append(where)
    motion = torch.tensor(step, dtype=torch.float32)[:, None, None]  # (2, 1, 1)
    flows = [-motion * where.float() for where in objects[1:]]
    forward = [motion * where.float() for where in objects[:-1]]
    return KnownMotion(frames, flows, forward, objects)


def cut_clip(count: int = 6, size: int = 64, *, cut: int = 3, step: tuple[float, float] = (1.5, 1.0),
             names: tuple[str, str] = ("coffee", "chelsea")) -> KnownMotion:
    """A pan by ``step`` over one picture for ``cut`` frames, then over another: a scene cut
    between frames cut − 1 and cut (true flow None there)."""
    first = affine_clip(cut, size, step=step, name=names[0])
    second = affine_clip(count - cut, size, step=step, name=names[1])
    return KnownMotion(first.frames + second.frames, first.flows + [None] + second.flows,
                       first.forward + [None] + second.forward)
