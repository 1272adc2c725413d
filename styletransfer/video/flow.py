"""Dense optical flow between frames, backward warping, occlusion masks and the warping error.

Pure functions on tensors: frames are (3, H, W) RGB in [0, 1] (or (C, H, W) for what is warped),
flows are (2, H, W) float32 in pixels, channel 0 the x (column) and channel 1 the y (row)
displacement; masks are (1, H, W) in the frame's dtype, 1 where the statement holds.

**One convention everywhere** (the backward flow of frame t): the flow from ``previous`` to
``current`` is the field w with

    current(p) ≈ previous(p + w(p))          for every pixel p = (x, y) of ``current``,

so the content at p in frame t was at p + w(p) in frame t − 1; :func:`warp` pulls the previous
frame (or the previous *output*) onto the current frame's grid with it, warp(I_{t−1}, w) ≈ I_t.
:func:`optical_flow` ``(previous, current)`` gives this w; with the arguments swapped it gives the
forward flow f of frame t − 1, previous(q) ≈ current(q + f(q)). (In Ruder et al.'s notation w is
their backward flow ŵ and f their forward flow w.) A camera panning right by d pixels a frame has
w = (+d, 0) everywhere, as :func:`styletransfer.video.flicker.pan`'s step does.

* :func:`optical_flow`, :func:`flows` (both ways): OpenCV's DIS (Kroeger et al. 2016) on the
  frames' grey levels, on the CPU (``opencv-python-headless``, imported only when a flow is computed).
* :func:`warp`: bilinear backward warping with a validity mask (samples outside the frame).
* :func:`same_surface`: Ruder et al. 2016's forward–backward consistency check and motion
  boundaries; 1 where warp(previous) shows the same surface as the current frame.
  :func:`agreement`: whether warp(previous) matches the current frame in colour.
* :func:`warping_error`, :func:`clip_warping_error`: Lai et al. 2018's E_warp.
* :func:`pair_motion` (one pair), :func:`clip_motion` (a clip): flow, masks and scene cut
  together; :func:`working_frame` and :func:`resized_motion` compute them on smaller frames.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UsageError
from ..registry import did_you_mean
from .io import INSTALL_HINT, VideoError

# DIS settings by name: OpenCV's preset (the constant's name: cv2 is imported lazily) and the
# settings changed from it. ULTRAFAST and FAST stop at a quarter of the resolution (finest scale
# 2) and upsample; MEDIUM refines at half resolution (finest scale 1) with more iterations; FINE
# is FAST carried down to full resolution (finest scale 0) with two variational refinement
# iterations. FINE is the default: on 256 px clips of known motion it is the most accurate
# (mean end-point error 0.01 px on a pan, 0.05 on a zoom, 0.05 on a rotation, 0.16 with an object
# moving over a still picture, against FAST's 0.19, 0.39, 0.53 and 0.48 and MEDIUM's 0.01, 0.10,
# 0.19 and 0.27; tests/test_video_flow.py), and --temporal computes it on frames of at most
# 256 px a side (temporal.FLOW_SIDE), where one flow takes about 10 ms on 2 cores.
PRESETS = {
    "ultrafast": ("DISOPTICAL_FLOW_PRESET_ULTRAFAST", {}),
    "fast": ("DISOPTICAL_FLOW_PRESET_FAST", {}),
    "medium": ("DISOPTICAL_FLOW_PRESET_MEDIUM", {}),
    "fine": ("DISOPTICAL_FLOW_PRESET_FAST",
             {"FinestScale": 0, "VariationalRefinementIterations": 2}),
}
DEFAULT_PRESET = "fine"
GREY_LEVELS = 255  # the largest 8-bit grey level: DIS works on uint8 grey images
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights of R, G, B in the grey levels

# Ruder et al. 2016's occlusion and motion-boundary rules (Lai et al. 2018 mask E_warp with them).
OCCLUSION_RELATIVE, OCCLUSION_ABSOLUTE = 0.01, 0.5  # |f̃ + w|² > 0.01(|f̃|² + |w|²) + 0.5 (px²)
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002  # |∇u|² + |∇v|² > 0.01|w|² + 0.002
INSIDE_SLACK = 1e-3  # px: a sample this far past the outermost pixel centre still counts as inside

# Scene cuts: a pixel is explained when it is on the same surface (below) and warp(previous)
# matches it within MATCH_TOLERANCE (mean |Δ| over RGB in [0, 1]; see :func:`agreement`);
# two frames belong to different shots when less than CUT_EXPLAINED of the picture is explained.
# Within a shot the unexplained part is what motion uncovered or moved out of view, plus the
# motion boundaries: 9–21% on the synthetic clips of the tests; half the picture would take a
# pan of half a frame per frame, where little is left to carry over anyway. Across a cut DIS
# still matches grey levels somewhere, but the consistency check and the colours reject nearly
# all of it (0.2% explained on the test's cut). Half the picture sits far from both.
MATCH_TOLERANCE = 0.1
CUT_EXPLAINED = 0.5


def require_opencv():
    """The ``cv2`` module, or a one-line error naming the extra that installs it."""
    try:
        import cv2
    except ImportError:
        raise VideoError(f"optical flow needs OpenCV, which is not installed: {INSTALL_HINT}") from None
    return cv2


_LOCAL = threading.local()  # one DIS object per preset and thread (it keeps its buffers between calls)


def _dis(preset: str):
    cache = _LOCAL.__dict__.setdefault("dis", {})
    if preset not in cache:
        cache[preset] = _new_dis(preset)
    return cache[preset]


def _new_dis(preset: str):
    if preset not in PRESETS:
        raise UsageError(f"unknown flow preset {preset!r}{did_you_mean(preset, PRESETS)}: "
                         f"choose from {', '.join(PRESETS)}")
    cv2 = require_opencv()
    base, settings = PRESETS[preset]
    dis = cv2.DISOpticalFlow_create(getattr(cv2, base))
    for name, value in settings.items():
        getattr(dis, f"set{name}")(value)
    return dis


def _grey(frame: Tensor) -> np.ndarray:
    """(3, H, W) RGB or (1, H, W) in [0, 1] → (H, W) uint8 grey levels (Rec. 601 weights, as OpenCV's)."""
    frame = frame.detach().float().clamp(0, 1)
    if frame.shape[0] == 3:
        frame = torch.einsum("c,chw->hw", torch.tensor(LUMA, device=frame.device), frame)[None]
    return (frame[0] * GREY_LEVELS + 0.5).to(torch.uint8).cpu().numpy()  # (H, W)


def _check_sizes(previous: Tensor, current: Tensor) -> None:
    if previous.shape != current.shape:
        raise UsageError(f"optical flow needs frames of one size, got {tuple(previous.shape)} and {tuple(current.shape)}")


def _calc(grid: np.ndarray, other: np.ndarray, preset: str, device) -> Tensor:
    """DIS's calc(I0, I1) gives w with I0(p) ≈ I1(p + w(p)): I0 is the frame whose grid w lives on."""
    flow = _dis(preset).calc(grid, other, None)  # (H, W, 2)
    return torch.from_numpy(flow).permute(2, 0, 1).contiguous().to(device)  # (2, H, W)


def optical_flow(previous: Tensor, current: Tensor, preset: str = DEFAULT_PRESET) -> Tensor:
    """The (2, H, W) float32 flow w in pixels, (x, y), with current(p) ≈ previous(p + w(p)):
    DIS on the grey levels of two (3, H, W) frames of one size. Swap the arguments for the
    forward flow. On the frames' device (computed on the CPU)."""
    _check_sizes(previous, current)
    return _calc(_grey(current), _grey(previous), preset, current.device)


def flows(previous: Tensor, current: Tensor, preset: str = DEFAULT_PRESET) -> tuple[Tensor, Tensor]:
    """(w, f): :func:`optical_flow` both ways, ``(previous, current)`` and ``(current, previous)``,
    each frame's grey levels computed once."""
    _check_sizes(previous, current)
    before, after = _grey(previous), _grey(current)
    return _calc(after, before, preset, current.device), _calc(before, after, preset, current.device)


# --- warping -------------------------------------------------------------------------------------


def pixel_grid(height: int, width: int, *, dtype=torch.float32, device=None) -> Tensor:
    """(2, H, W): each pixel's own (x, y) coordinates, pixel centres at integers."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                            torch.arange(width, dtype=dtype, device=device), indexing="ij")
    return torch.stack([xs, ys])  # (2, H, W)


def inside(points: Tensor, height: int, width: int) -> Tensor:
    """(…, 1, H', W') bool: which of the (…, 2, H', W') (x, y) ``points`` lie between the outermost
    pixel centres of an H x W frame, 0 ≤ x ≤ W − 1 and 0 ≤ y ≤ H − 1 (within :data:`INSIDE_SLACK`)."""
    x, y = points[..., 0:1, :, :], points[..., 1:2, :, :]
    return (x >= -INSIDE_SLACK) & (x <= width - 1 + INSIDE_SLACK) & (y >= -INSIDE_SLACK) & (y <= height - 1 + INSIDE_SLACK)


def sample(image: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """Bilinear samples of ``image`` (C, H, W) or (N, C, H, W) at ``points`` (2, H', W') or
    (N, 2, H', W'), absolute (x, y) pixel coordinates with pixel centres at integers, and a mask
    (1, H', W') (or (N, 1, H', W')) of the points :func:`inside` the frame: between the outermost
    pixel centres, where bilinear interpolation uses the picture's own pixels only.

    Outside, the point is moved to the nearest border position (the border pixel's value: no
    dark rim leaks into neighbouring samples); the mask says not to trust it. A point on a pixel
    centre gives that pixel's value exactly (its weights are 1 and 0), so a zero flow warps a
    frame onto itself bit for bit."""
    if image.dim() == 3 and points.dim() == 3 and _opencv_takes(image):
        return _remap(image, points), inside(points, *image.shape[-2:]).to(image.dtype)
    batched = image.dim() == 4
    images = image if batched else image.unsqueeze(0)  # (N, C, H, W)
    points = (points if points.dim() == 4 else points.unsqueeze(0)).to(images.dtype)  # (N, 2, H', W')
    count, channels, height, width = images.shape
    points = points.expand(count, *points.shape[1:])
    x = points[:, 0].clamp(0, width - 1)  # (N, H', W')
    y = points[:, 1].clamp(0, height - 1)
    left = x.floor().clamp(max=max(width - 2, 0))  # the pixel left of x, so that x − left ∈ [0, 1]
    top = y.floor().clamp(max=max(height - 2, 0))
    wx, wy = (x - left).unsqueeze(1), (y - top).unsqueeze(1)  # (N, 1, H', W') each
    left, top = left.long(), top.long()
    right, bottom = (left + 1).clamp(max=width - 1), (top + 1).clamp(max=height - 1)
    flat = images.flatten(2)  # (N, C, H·W)

    def at(rows: Tensor, columns: Tensor) -> Tensor:  # (N, C, H', W'): the pixels at (rows, columns)
        index = (rows * width + columns).flatten(1).unsqueeze(1).expand(-1, channels, -1)  # (N, C, H'·W')
        return flat.gather(2, index).view(count, channels, *rows.shape[1:])

    upper = torch.lerp(at(top, left), at(top, right), wx)
    lower = torch.lerp(at(bottom, left), at(bottom, right), wx)
    out = torch.lerp(upper, lower, wy)  # (N, C, H', W')
    valid = inside(points, height, width).to(images.dtype)  # (N, 1, H', W')
    return (out, valid) if batched else (out[0], valid[0])


def _opencv_takes(image: Tensor) -> bool:
    """Whether OpenCV's remap and resize can take ``image`` (C, H, W): float32 on the CPU, 1 to 4
    channels, OpenCV installed. They give what the torch paths give, to float rounding, 2 to 3x
    faster on 2 cores."""
    if image.device.type != "cpu" or image.dtype != torch.float32 or not 1 <= image.shape[0] <= 4:
        return False
    try:
        require_opencv()
    except VideoError:
        return False
    return True


def _remap(image: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of the (C, H, W) float32 ``image`` at the (2, H', W') (x, y) ``points`` by
    OpenCV's remap (float maps: no fixed-point rounding of the positions), the border pixel's
    value outside; (C, H', W'). A point on a pixel centre gives that pixel exactly."""
    cv2 = require_opencv()
    x, y = (np.ascontiguousarray(points[i].detach().float().numpy()) for i in (0, 1))
    return _from_hwc(cv2.remap(_to_hwc(image), x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))


def _to_hwc(image: Tensor) -> np.ndarray:
    """(C, H, W) tensor → (H, W, C) contiguous array, OpenCV's layout."""
    return np.ascontiguousarray(image.detach().permute(1, 2, 0).numpy())


def _from_hwc(array: np.ndarray) -> Tensor:
    """OpenCV's (H, W, C) or (H, W) result → (C, H, W) tensor (OpenCV drops a single channel's axis)."""
    return torch.from_numpy(array.reshape(*array.shape[:2], -1)).permute(2, 0, 1).contiguous()


def warp(image: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    """Backward warping: out(p) = image(p + flow(p)), bilinear, with the mask of the samples that
    fall inside the frame (see :func:`sample`). ``image`` (C, H, W) or (N, C, H, W), ``flow``
    (2, H, W) or (N, 2, H, W) on the same grid. With the flow of :func:`optical_flow`
    ``(previous, current)``, ``warp(previous, flow)`` is the previous frame moved onto the current one."""
    if image.shape[-2:] != flow.shape[-2:]:
        raise UsageError(f"warp: image {tuple(image.shape)} and flow {tuple(flow.shape)} differ in size")
    points = pixel_grid(*flow.shape[-2:], dtype=flow.dtype, device=flow.device) + flow  # (…, 2, H, W)
    return sample(image, points)


# --- occlusion (Ruder et al. 2016) ---------------------------------------------------------------


def _squared_norm(flow: Tensor) -> Tensor:
    """(…, 2, H, W) → (…, 1, H, W): |w|² = u² + v²."""
    return flow.pow(2).sum(dim=-3, keepdim=True)


def occluded(flow: Tensor, forward: Tensor) -> Tensor:
    """Disocclusions of the current frame, (1, H, W) bool: ``flow`` w is the current frame's
    backward flow (:func:`optical_flow` ``(previous, current)``), ``forward`` f the previous
    frame's forward flow (``(current, previous)``). Where the surface at p was visible in both
    frames, following w to the previous frame and f back returns to p: f̃ = warp(f, w) ≈ −w.
    Occluded where

        |f̃ + w|² > 0.01 (|f̃|² + |w|²) + 0.5

    (Ruder et al.'s |w̃ + ŵ|² > 0.01(|w̃|² + |ŵ|²) + 0.5, their ŵ our w, their w̃ our f̃)."""
    returned, _ = warp(forward, flow)  # (2, H, W): f̃(p) = f(p + w(p))
    disagreement = _squared_norm(returned + flow)
    return disagreement > OCCLUSION_RELATIVE * (_squared_norm(returned) + _squared_norm(flow)) + OCCLUSION_ABSOLUTE


def motion_boundaries(flow: Tensor) -> Tensor:
    """(1, H, W) bool: where the (2, H, W) flow w = (u, v) changes fast,

        |∇u|² + |∇v|² > 0.01 |w|² + 0.002,

    the gradients by forward differences (0 on the last column and row)."""
    dx = torch.zeros_like(flow)
    dy = torch.zeros_like(flow)
    dx[..., :, :-1] = flow[..., :, 1:] - flow[..., :, :-1]  # (2, H, W): ∂u/∂x, ∂v/∂x
    dy[..., :-1, :] = flow[..., 1:, :] - flow[..., :-1, :]  # (2, H, W): ∂u/∂y, ∂v/∂y
    gradient = _squared_norm(dx) + _squared_norm(dy)  # (1, H, W)
    return gradient > BOUNDARY_RELATIVE * _squared_norm(flow) + BOUNDARY_ABSOLUTE


def grown(region: Tensor, radius: int) -> Tensor:
    """(1, H, W) bool: ``region`` and every pixel within ``radius`` of it (a square window)."""
    if radius <= 0:
        return region
    cv2 = require_opencv()
    window = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    dilated = cv2.dilate(region[0].to(torch.uint8).cpu().numpy(), window, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return torch.from_numpy(dilated).to(region.device).bool()[None]


def same_surface(flow: Tensor, forward: Tensor, margin: int = 0) -> Tensor:
    """(1, H, W) float32, 1 where warp(previous, ``flow``) shows the same surface as the current
    frame: not :func:`occluded`, not on :func:`motion_boundaries` and sampled inside the frame
    (Ruder et al.'s weights c, plus the frame's edge). ``flow`` and ``forward`` as for
    :func:`occluded`; ``margin`` grows the occlusions by that many pixels (0: Ruder's rule as it is)."""
    height, width = flow.shape[-2:]
    sampled = inside(pixel_grid(height, width, dtype=flow.dtype, device=flow.device) + flow, height, width)
    return (sampled & ~grown(occluded(flow, forward), margin) & ~motion_boundaries(flow)).float()  # (1, H, W)


# --- the warping error (Lai et al. 2018) ---------------------------------------------------------


def warping_error(previous: Tensor, current: Tensor, flow: Tensor, mask: Tensor) -> float:
    """E_warp of one pair: (1/Σ M) Σ_p M(p) ‖O_t(p) − warp(O_{t−1}, w)(p)‖², with ``previous``
    O_{t−1} and ``current`` O_t (C, H, W) in [0, 1], ``flow`` w and ``mask`` M (1, H, W) from the
    INPUT frames; ‖·‖² sums the squared differences over the channels (so a pixel contributes at
    most C = 3). NaN when the mask is empty (nothing to compare)."""
    moved, _ = warp(previous.float(), flow)  # (C, H, W); same_surface's mask leaves out samples outside
    squared = (current.float() - moved).pow(2).sum(dim=0, keepdim=True)  # (1, H, W)
    total = float(mask.sum())
    return float((squared * mask).sum()) / total if total > 0 else math.nan


def agreement(previous: Tensor, current: Tensor, flow: Tensor) -> Tensor:
    """(1, H, W) in [0, 1]: how well warp(``previous``, ``flow``) matches the ``current`` (3, H, W)
    frame in colour, 1 − mean |Δ| over RGB / :data:`MATCH_TOLERANCE`, clamped (0: off by the
    tolerance or more). A photometric check beside the geometric one of :func:`same_surface`:
    where the flow is wrong but consistent both ways, the colours still tell."""
    moved, _ = warp(previous.float(), flow)  # (3, H, W)
    difference = (current.float() - moved).abs().mean(dim=0, keepdim=True)  # (1, H, W)
    return (1 - difference / MATCH_TOLERANCE).clamp(0, 1)


@dataclass
class Motion:
    """The motion between two input frames: the backward ``flow`` (2, H, W) of the current frame,
    the ``mask`` (1, H, W) of :func:`same_surface`, the colour :func:`agreement` (1, H, W), the
    fraction of the picture ``explained`` by them (same surface, and the colours match within
    :data:`MATCH_TOLERANCE`) and whether the pair is a scene ``cut`` (explained <
    :data:`CUT_EXPLAINED`: nothing should be carried across)."""

    flow: Tensor
    mask: Tensor
    agreement: Tensor
    explained: float
    cut: bool

    @property
    def weight(self) -> Tensor:
        """(1, H, W) in [0, 1]: how much of warp(previous) may stand for the current frame at each
        pixel, mask × agreement (0 everywhere across a cut)."""
        return torch.zeros_like(self.mask) if self.cut else self.mask * self.agreement


def pair_motion(previous: Tensor, current: Tensor, preset: str = DEFAULT_PRESET, margin: int = 0) -> Motion:
    """Flow both ways between two (3, H, W) input frames, the same-surface mask (its occlusions
    grown by ``margin`` px), the colour agreement and the cut test. On smaller frames, faster:
    ``resized_motion(pair_motion(working_frame(a, side), working_frame(b, side)), H, W)``."""
    flow, forward = flows(previous, current, preset)
    mask = same_surface(flow, forward, margin)  # (1, H, W)
    agrees = agreement(previous, current, flow)  # (1, H, W)
    explained = float((mask * (agrees > 0)).mean())
    return Motion(flow, mask, agrees, explained, explained < CUT_EXPLAINED)


def working_frame(frame: Tensor, side: int) -> Tensor:
    """The (3, H, W) ``frame`` in float32, resized by area averaging so that its shorter side is at
    most ``side`` (the proportions kept; 0, or a frame that small already: as it is). A flow's cost
    grows with the pixels; at 256 px it stays accurate enough to blend with (docs/VIDEO.md)."""
    frame = frame.float()
    height, width = frame.shape[-2:]
    if not side or min(height, width) <= side:
        return frame
    scale = side / min(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return _resized(frame, size, "area")


def _resized(image: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """(C, H, W) float32 → (C, *size): area averaging ("area") or bilinear ("bilinear", pixel
    centres aligned as area averaging aligns them), by OpenCV where it can (several times faster
    than torch's adaptive pooling on a CPU) and torch otherwise."""
    if not _opencv_takes(image):
        return F.interpolate(image[None], size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))[0]
    cv2 = require_opencv()
    method = cv2.INTER_AREA if mode == "area" else cv2.INTER_LINEAR
    return _from_hwc(cv2.resize(_to_hwc(image), (size[1], size[0]), interpolation=method))


def resized_motion(motion: Motion, height: int, width: int) -> Motion:
    """``motion`` computed on smaller frames, brought to (height, width): the flow's vectors scaled
    by the sizes' ratio, the flow and the masks resized bilinearly (pixel centres aligned as by
    area averaging; the mask fractional along its edges, and a ``margin`` it was computed with
    counted in the smaller frames' pixels)."""
    small = motion.flow.shape[-2:]
    fields = torch.cat([motion.flow, motion.mask.to(motion.flow.dtype), motion.agreement.to(motion.flow.dtype)])
    fields = _resized(fields, (height, width), "bilinear")  # (4, H, W)
    stretch = torch.tensor([width / small[1], height / small[0]], dtype=fields.dtype)[:, None, None]
    return Motion(fields[:2] * stretch, fields[2:3], fields[3:4], motion.explained, motion.cut)


def clip_motion(frames: Sequence[Tensor], preset: str = DEFAULT_PRESET) -> list[Motion]:
    """:func:`pair_motion` of every consecutive pair of input frames (len(frames) − 1 of them)."""
    return [pair_motion(before, after, preset) for before, after in zip(frames[:-1], frames[1:])]


@dataclass
class WarpingError:
    """E_warp of a clip: ``pairs`` one value per consecutive pair, ``cuts`` which pairs span a
    scene cut, ``mean`` the mean over the pairs within a shot (a cut is not a flicker; NaN when
    every pair is a cut)."""

    pairs: list[float]
    cuts: list[bool]

    @property
    def mean(self) -> float:
        kept = [value for value, cut in zip(self.pairs, self.cuts) if not cut]
        return sum(kept) / len(kept) if kept else math.nan


def warping_errors(outputs: Sequence[Tensor], motions: Sequence[Motion]) -> WarpingError:
    """E_warp of the output frames with the input clip's :func:`clip_motion` (compute that once
    and measure several outputs, and the input clip itself, with it)."""
    if len(outputs) != len(motions) + 1:
        raise UsageError(f"{len(outputs)} output frames need {len(outputs) - 1} motions, got {len(motions)}")
    pairs = [warping_error(before, after, m.flow, m.mask) for before, after, m in zip(outputs[:-1], outputs[1:], motions)]
    return WarpingError(pairs, [m.cut for m in motions])


def clip_warping_error(inputs: Sequence[Tensor], outputs: Sequence[Tensor] | None = None,
                       preset: str = DEFAULT_PRESET) -> WarpingError:
    """Lai et al. 2018's warping error of ``outputs`` (O_t, e.g. the stylised frames), with flow and
    masks computed on the ``inputs`` (I_t, the clip's own frames); without ``outputs``, of the
    input clip itself: the floor a stylisation of the clip can be compared with.

        E_warp = mean over t of (1/Σ M_t) Σ_p M_t(p) ‖O_t(p) − warp(O_{t−1}, w_t)(p)‖²"""
    outputs = inputs if outputs is None else outputs
    if len(outputs) != len(inputs):
        raise UsageError(f"{len(inputs)} input frames but {len(outputs)} output frames")
    if len(inputs) < 2:
        raise UsageError("the warping error needs at least two frames")
    return warping_errors(outputs, clip_motion(inputs, preset))
