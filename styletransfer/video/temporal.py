"""``--temporal``: a clip stylised frame by frame that holds still where the world holds still.

A feed-forward stylizer sees each frame alone, so what it does to one surface changes from frame
to frame. Two remedies, both off unless asked for, applied here without touching the image path:

1. **Running statistics.** The content's per-channel statistics that the stylizer normalises
   with — the moments (μ, σ²) of every conditional instance norm in Magenta's transformer (and,
   with ``alpha`` < 1, the content's own style embedding); AdaIN's (μ, σ) of the relu4_1
   features; WCT's (μ, Σ) — jump between frames. Each is replaced by its exponential moving
   average over the frames so far, s̄_t = m·s̄_{t−1} + (1 − m)·s_t (``momentum`` m), one average
   per statistic, per mask region and per style pass. The stylizers expose the point where they
   compute these as a hook, ``smooth_moments`` (None, the default, leaves them untouched);
   :func:`smoothing` sets it for one clip.
2. **Flow-compensated blend** (Ruder et al. 2016's temporal constraint, applied as a blend). The
   dense optical flow w between consecutive INPUT frames (:mod:`.flow`, OpenCV's DIS on the CPU,
   computed on the frames resized to at most :data:`FLOW_SIDE` a side and brought back) pulls the
   previous output onto the current frame's grid, warp(O_{t−1}, w), which is blended into the new
   stylisation S_t:

       O_t = S_t + b·c·(warp(O_{t−1}, w) − S_t),    c = same_surface × colour agreement

   with ``blend`` b, where c is 1 only where the pixel shows the same surface in both frames
   (Ruder's forward–backward check, its occlusions grown by :data:`OCCLUSION_MARGIN`, and motion
   boundaries, inside the frame) and the warped
   previous frame matches the current one in colour (falling to 0 at a mean |Δ| of 0.1). What
   moved into view, what a moving object uncovered, and what the flow gets wrong are left as
   stylised: no trail.

A scene cut (less than half of the picture explained by the flow) restarts both, so the
statistics of one shot never leak into the next and nothing is blended across it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

import torch
from torch import Tensor, nn

from ..errors import UsageError
from .flow import DEFAULT_PRESET, pair_motion, resized_motion, warp, working_frame

DEFAULT_MOMENTUM = 0.5  # running statistics: weight of the past (0: off); see docs/VIDEO.md for why not more
DEFAULT_BLEND = 0.5  # flow-compensated blend: weight of the previous output (0: off)
DEFAULT_FLOW = DEFAULT_PRESET  # the DIS preset of the flow (flow.PRESETS)
FLOW_SIDE = 256  # px: the flow is computed on the frames resized to at most this shorter side (flow.pair_motion)
OCCLUSION_MARGIN = 2  # px: occlusions are grown by this much before blending (the flow blurs across their edges)
HOOK = "smooth_moments"  # the attribute a stylizer, or one of its modules, reads its hook from


class RunningMoments:
    """Exponential moving averages of statistics over frames, one per key:
    s̄_t = m·s̄_{t−1} + (1 − m)·s_t with s̄_0 = s_0, kept in float32 or wider (returned in the
    input's dtype, so WCT's float64 moments stay float64). Within :meth:`scope` ``(name)`` the
    keys are the scope's own (one pass per style of a masked stylisation keeps its averages)."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self._averages: dict[str, tuple[Tensor, ...]] = {}
        self._scope = ""

    def __call__(self, key: str, *stats: Tensor) -> tuple[Tensor, ...]:
        key = f"{self._scope}{key}"
        previous = self._averages.get(key)
        current = tuple(s.to(torch.promote_types(s.dtype, torch.float32)) for s in stats)
        if previous is not None and [p.shape for p in previous] == [c.shape for c in current]:
            current = tuple(torch.lerp(c, p, self.momentum) for p, c in zip(previous, current))
        self._averages[key] = current
        return tuple(c.to(s.dtype) for c, s in zip(current, stats))

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Within the block, every key is prefixed with ``name`` (scopes nest)."""
        outer = self._scope
        self._scope = f"{outer}{name}/"
        try:
            yield
        finally:
            self._scope = outer

    def reset(self) -> None:
        """Forget the past (a new clip, or a scene cut)."""
        self._averages.clear()

    def __len__(self) -> int:
        return len(self._averages)


class Hook:
    """What ``--temporal`` sets as a ``smooth_moments`` hook: ``hook(key, *stats)`` gives the
    running averages to use instead of ``stats`` (under ``prefix:key``), and ``hook.scope(name)``
    a block whose statistics are averaged apart (:func:`styletransfer.realtime.smoothing_scope`)."""

    def __init__(self, running: RunningMoments, prefix: str) -> None:
        self.running, self.prefix = running, prefix

    def __call__(self, key: str, *stats: Tensor) -> tuple[Tensor, ...]:
        return self.running(f"{self.prefix}:{key}", *stats)

    def scope(self, name: str) -> ContextManager[None]:
        return self.running.scope(name)


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
        setattr(owner, HOOK, Hook(running, name))
    try:
        yield running
    finally:
        for _, owner in owners:
            delattr(owner, HOOK)  # back to the class's None


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Within the block torch runs on one thread (OpenCV's flow runs on its own pool, which the
    idle torch threads would otherwise compete with while they spin)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class TemporalFilter:
    """Stylise a clip's frames in order with running statistics and a flow-compensated blend.

    ``with TemporalFilter(stylizer, momentum, blend, flow) as temporal:`` installs the hooks for
    the block; then ``temporal(frame, stylize)`` stylises one (3, H, W) frame with
    ``stylize(frame)`` (which runs ``stylizer``) and returns the output, (3, H, W) like the frame.
    """

    def __init__(self, stylizer, momentum: float = DEFAULT_MOMENTUM, blend: float = DEFAULT_BLEND,
                 flow: str = DEFAULT_FLOW) -> None:
        self.stylizer, self.blend, self.flow = stylizer, blend, flow
        self.running = RunningMoments(momentum)
        self.cuts = 0
        self._previous: tuple[Tensor, Tensor] | None = None  # (frame at the flow's size, output)
        self._hooks = None

    def __enter__(self) -> "TemporalFilter":
        self._hooks = smoothing(self.stylizer, self.running)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self._previous = None

    def __call__(self, frame: Tensor, stylize: Callable[[Tensor], Tensor]) -> Tensor:
        motion = None
        with one_torch_thread():  # small tensors: threads gain nothing and would compete with OpenCV's
            small = working_frame(frame, FLOW_SIDE)  # (3, h, w): what the flow is computed on
            if self._previous is not None:
                motion = pair_motion(self._previous[0], small, self.flow, OCCLUSION_MARGIN)
        if motion is not None and motion.cut:  # a new shot: nothing carries over
            self.running.reset()
            self.cuts += 1
        output = stylize(frame)  # (3, H, W)
        if motion is not None and not motion.cut and self.blend > 0:
            motion = resized_motion(motion, *frame.shape[-2:])
            moved, _ = warp(self._previous[1].float(), motion.flow)  # (3, H, W); outside the frame c = 0
            output = torch.lerp(output, moved.to(output.dtype), self.blend * motion.weight.to(output.dtype))
        self._previous = (small, output)
        return output
