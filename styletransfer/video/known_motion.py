"""Clips whose motion is known, built from the sample pictures: the frames and their true
optical flow, in :mod:`styletransfer.video.flow`'s convention. The tests measure the flow against
them, and ``scripts/bench_video.py`` measures ``--temporal`` on every kind: a camera pan, zoom and
rotation (:func:`affine_clip`), an object moving over a still picture (:func:`object_clip`) and a
scene cut (:func:`cut_clip`); :func:`kinds` names one clip of each.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..imageio import load_image, resize_to
from ..realtime import center_crop
from .flow import Motion, grown, pixel_grid, same_surface, sample

PICTURES = Path(__file__).resolve().parents[1] / "samples" / "content"  # astronaut, chelsea, coffee, rocket


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

    def true_motions(self) -> list[Motion]:
        """Every pair's true flow as a :class:`~styletransfer.video.flow.Motion`, its mask by
        :func:`~styletransfer.video.flow.same_surface` from the true flows both ways, colours
        taken to agree everywhere; across a cut nothing is compared (an empty mask)."""
        size = self.frames[0].shape[-2:]
        motions = []
        for flow, forward in zip(self.flows, self.forward):
            if flow is None:
                empty = torch.zeros(1, *size)
                motions.append(Motion(torch.zeros(2, *size), empty, empty, 0.0, True))
            else:
                mask = same_surface(flow, forward)
                motions.append(Motion(flow, mask, torch.ones_like(mask), 1.0, False))
        return motions

    def uncovered(self, t: int) -> torch.Tensor:
        """(H, W) bool: where the moving object was in frame t − 1 and is not in frame t."""
        return self.objects[t - 1] & ~self.objects[t]

    def still_background(self, t: int, distance: int) -> torch.Tensor:
        """(H, W) bool: the pixels ``distance`` px or more (a square window) from anywhere the
        moving object has been in frames 0 to t."""
        ever = torch.stack(self.objects[:t + 1]).any(dim=0)  # (H, W)
        return ~grown(ever[None], distance)[0]


@functools.lru_cache(maxsize=None)
def _picture(name: str, size: int) -> torch.Tensor:
    return resize_to(center_crop(load_image(PICTURES / f"{name}.jpg")), size, size)


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
                background: str = "coffee", thing: str | tuple[float, float, float] = "astronaut") -> KnownMotion:
    """A square moving by ``step`` = (dx, dy) whole pixels a frame over a still picture
    ``background``, from near the top left: textured (the middle of picture ``thing``) or flat
    (``thing`` an RGB colour in [0, 1]). Inside the square the true flow is −step, elsewhere 0;
    the strip it uncovers in each frame showed the square in the previous one (a disocclusion)."""
    frames, objects = [], []
    if isinstance(thing, str):
        patch = picture(thing, 2 * object_size)[:, object_size // 2:object_size // 2 + object_size,
                                                object_size // 2:object_size // 2 + object_size]
    else:
        patch = torch.tensor(thing, dtype=torch.float32)[:, None, None].expand(3, object_size, object_size)
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


def still_clip(count: int = 4, size: int = 64, *, name: str = "coffee") -> KnownMotion:
    """The same picture ``count`` times: nothing moves (true flow 0)."""
    frame = picture(name, size)
    zero = torch.zeros(2, size, size)
    return KnownMotion([frame.clone() for _ in range(count)], [zero] * (count - 1), [zero] * (count - 1))


def kinds(count: int = 4, size: int = 64) -> dict[str, Callable[[], KnownMotion]]:
    """One clip of each kind of motion, ``count`` frames of size x size, by name (built when
    called). The motions per frame grow with the size where they are in pixels: a pan by
    (1.5, 1) px at 64 px, an object of 5/16 of the frame moving by whole pixels; a zoom in by
    2% and a turn by 1° at every size; the cut halfway through a pan. "object" is a textured
    square, "red square" a flat one."""
    unit = size / 64
    step = (1.5 * unit, 1.0 * unit)
    moves = (max(1, round(2 * unit)), max(1, round(unit)))
    return {
        "still": lambda: still_clip(count, size),
        "pan": lambda: affine_clip(count, size, step=step),
        "zoom": lambda: affine_clip(count, size, scale=1.02),
        "rotation": lambda: affine_clip(count, size, degrees=1.0),
        "object": lambda: object_clip(count, size, object_size=round(size * 5 / 16), step=moves),
        "red square": lambda: object_clip(count, size, object_size=round(size * 5 / 16), step=moves,
                                          thing=(1.0, 0.0, 0.0)),
        "cut": lambda: cut_clip(count, size, cut=count // 2, step=step),
    }
