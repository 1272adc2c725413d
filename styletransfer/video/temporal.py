"""``--temporal``: less flicker when a clip is stylised frame by frame.

A feed-forward stylizer sees each frame alone, so what it does to one surface changes from frame
to frame. Two remedies, both off unless asked for, applied here without touching the image path:

1. **Running statistics.** The content's per-channel statistics that the stylizer normalises
   with — the moments (μ, σ²) of every conditional instance norm in Magenta's transformer (and,
   with ``alpha`` < 1, the content's own style embedding); AdaIN's (μ, σ) of the relu4_1
   features; WCT's (μ, Σ) — jump between frames. Each is replaced by its exponential moving
   average over the frames so far, s̄_t = m·s̄_{t−1} + (1 − m)·s_t (``momentum`` m). The
   stylizers expose the point where they compute these as a hook, ``smooth_moments``
   (None, the default, leaves them untouched); :func:`smoothing` sets it for one clip.
2. **Motion-compensated blend.** The global translation between consecutive content frames is
   estimated by phase correlation (one FFT pair per frame); the previous output, shifted by it,
   is blended into the new one with weight ``blend`` × agreement, where the agreement of a pixel
   falls from 1 to 0 as the shifted previous content differs from the current content by up to
   :data:`MATCH_TOLERANCE` — so pixels the global motion does not explain (objects moving on
   their own, uncovered borders) are left as stylised.

A scene cut (the aligned frames agree on less than :data:`CUT_AGREEMENT` of the picture) restarts
both, so the statistics of one shot never leak into the next.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from ..errors import UsageError

DEFAULT_MOMENTUM = 0.9  # running statistics: weight of the past (0: off)
DEFAULT_BLEND = 0.5  # motion-compensated blend: weight of the previous output (0: off)
MATCH_TOLERANCE = 0.1  # mean |Δ| over RGB in [0, 1] at which a shifted pixel no longer counts as the same
CUT_AGREEMENT = 0.25  # mean agreement below which two frames belong to different shots
HOOK = "smooth_moments"  # the attribute a stylizer, or one of its modules, reads its hook from
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights: motion is estimated on brightness


class RunningMoments:
    """Exponential moving averages of statistics over frames, one per key:
    s̄_t = m·s̄_{t−1} + (1 − m)·s_t with s̄_0 = s_0, kept in float32 or wider (returned in the
    input's dtype, so WCT's float64 moments stay float64)."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self._averages: dict[str, tuple[Tensor, ...]] = {}

    def __call__(self, key: str, *stats: Tensor) -> tuple[Tensor, ...]:
        previous = self._averages.get(key)
        current = tuple(s.to(torch.promote_types(s.dtype, torch.float32)) for s in stats)
        if previous is not None and [p.shape for p in previous] == [c.shape for c in current]:
            current = tuple(torch.lerp(c, p, self.momentum) for p, c in zip(previous, current))
        self._averages[key] = current
        return tuple(c.to(s.dtype) for c, s in zip(current, stats))

    def reset(self) -> None:
        """Forget the past (a new clip, or a scene cut)."""
        self._averages.clear()

    def __len__(self) -> int:
        return len(self._averages)


def hook_owners(stylizer) -> list[tuple[str, object]]:
    """(name, owner) of every place in ``stylizer`` that reads a ``smooth_moments`` hook: the
    stylizer itself and the modules of its networks that declare one (Magenta's norms)."""
    owners: list[tuple[str, object]] = [("", stylizer)] if hasattr(stylizer, HOOK) else []
    seen: set[int] = set()
    for attribute, network in vars(stylizer).items():
        if not isinstance(network, nn.Module):
            continue
        for name, module in network.named_modules(prefix=attribute):
            if id(module) not in seen and hasattr(module, HOOK):
                seen.add(id(module))
                owners.append((name, module))
    return owners


@contextmanager
def smoothing(stylizer, running: RunningMoments) -> Iterator[RunningMoments]:
    """Within the block, ``stylizer`` normalises with ``running``'s averages of its content
    statistics (one key per hook owner); the hooks are removed on exit, leaving the stylizer as
    it was."""
    owners = hook_owners(stylizer)
    if not owners:
        raise UsageError(f"--temporal: {type(stylizer).__name__} has no statistics to smooth")
    for name, owner in owners:
        setattr(owner, HOOK, _keyed(running, name))
    try:
        yield running
    finally:
        for _, owner in owners:
            delattr(owner, HOOK)  # back to the class's None


def _keyed(running: RunningMoments, prefix: str) -> Callable[..., tuple[Tensor, ...]]:
    def smooth(key: str, *stats: Tensor) -> tuple[Tensor, ...]:
        return running(f"{prefix}:{key}", *stats)

    return smooth


# --- motion ------------------------------------------------------------------------------------


def _luma(image: Tensor) -> Tensor:
    """(3, H, W) → (H, W) brightness, mean removed, under a Hann window (no edge in the FFT)."""
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device)
    luma = torch.einsum("c,chw->hw", weights, image)
    luma = luma - luma.mean()
    height, width = luma.shape
    window = torch.outer(torch.hann_window(height, periodic=False, dtype=luma.dtype, device=luma.device),
                         torch.hann_window(width, periodic=False, dtype=luma.dtype, device=luma.device))
    return luma * window


def estimate_shift(previous: Tensor, current: Tensor) -> tuple[int, int]:
    """The integer (dy, dx) with ``current[:, y, x] ≈ previous[:, y + dy, x + dx]``: a pan of the
    view by dx pixels right and dy down per frame. Phase correlation of the two (3, H, W) frames."""
    a, b = _luma(previous.float()), _luma(current.float())  # (H, W) each
    cross = torch.fft.rfft2(a) * torch.fft.rfft2(b).conj()
    surface = torch.fft.irfft2(cross / cross.abs().clamp_min(torch.finfo(a.dtype).tiny), s=a.shape)  # (H, W)
    height, width = a.shape
    dy, dx = divmod(int(surface.argmax()), width)
    return dy - height if dy > height // 2 else dy, dx - width if dx > width // 2 else dx


def shifted(image: Tensor, dy: int, dx: int) -> tuple[Tensor, Tensor]:
    """``image`` (…, H, W) moved so that ``out[…, y, x] = image[…, y + dy, x + dx]``, and a
    (1, H, W) mask of the positions that have a source (1) or fall outside it (0; zeros there)."""
    height, width = image.shape[-2:]
    out = torch.zeros_like(image)
    valid = image.new_zeros(1, height, width)
    top, bottom = max(0, -dy), min(height, height - dy)
    left, right = max(0, -dx), min(width, width - dx)
    if top < bottom and left < right:
        out[..., top:bottom, left:right] = image[..., top + dy:bottom + dy, left + dx:right + dx]
        valid[..., top:bottom, left:right] = 1
    return out, valid


def agreement(previous: Tensor, current: Tensor, dy: int, dx: int) -> Tensor:
    """(1, H, W) in [0, 1]: how well the previous (3, H, W) frame shifted by (dy, dx) explains the
    current one at each pixel (1: the same colour; 0: off by MATCH_TOLERANCE or more, or no source)."""
    moved, valid = shifted(previous, dy, dx)
    difference = (current - moved).abs().mean(dim=0, keepdim=True)  # (1, H, W)
    return valid * (1 - difference / MATCH_TOLERANCE).clamp(0, 1)


class TemporalFilter:
    """Stylise a clip's frames in order with running statistics and a motion-compensated blend.

    ``with TemporalFilter(stylizer, momentum, blend) as temporal:`` installs the hooks for the
    block; then ``temporal(frame, stylize)`` stylises one (3, H, W) frame with
    ``stylize(frame)`` (which runs ``stylizer``) and returns the output, (3, H, W) like the frame.
    """

    def __init__(self, stylizer, momentum: float = DEFAULT_MOMENTUM, blend: float = DEFAULT_BLEND) -> None:
        self.stylizer, self.blend = stylizer, blend
        self.running = RunningMoments(momentum)
        self.cuts = 0
        self._previous: tuple[Tensor, Tensor] | None = None  # (frame, output)
        self._hooks = None

    def __enter__(self) -> "TemporalFilter":
        self._hooks = smoothing(self.stylizer, self.running)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self._previous = None

    def __call__(self, frame: Tensor, stylize: Callable[[Tensor], Tensor]) -> Tensor:
        weight = motion = None
        if self._previous is not None:
            before, output_before = self._previous
            motion = estimate_shift(before, frame)
            weight = agreement(before, frame, *motion)  # (1, H, W)
            if float(weight.mean()) < CUT_AGREEMENT:  # a new shot: nothing carries over
                self.running.reset()
                self.cuts += 1
                weight = None
        output = stylize(frame)  # (3, H, W)
        if weight is not None and self.blend > 0:
            moved, _ = shifted(output_before, *motion)
            output = torch.lerp(output, moved.to(output.dtype), self.blend * weight)
        self._previous = (frame, output)
        return output
