"""Normalization layers by name, so a network takes a norm name instead of hard-coding one.

``none`` adds no module at all, so a decoder built with it has exactly pytorch-AdaIN's children
(and state-dict keys). ``instance`` normalises with each image's own statistics in training and
evaluation alike (``track_running_stats=False``), as in Ulyanov et al.; ``batch`` uses batch
statistics in training and running averages in evaluation (PyTorch's convention).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .registry import Registry

NORMS: Registry[Callable[[int], nn.Module | None]] = Registry("normalization")


@NORMS.register("none")
def _none(channels: int) -> None:
    return None


@NORMS.register("batch")
def _batch(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels)


@NORMS.register("instance")
def _instance(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


@NORMS.register("layer")
def _layer(channels: int) -> nn.Module:
    return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W), per image


@NORMS.register("group")
def _group(channels: int) -> nn.Module:
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def make_norm(name: str, channels: int) -> nn.Module | None:
    """The named normalization for ``channels`` channels, or None for ``none``."""
    return NORMS.get(name)(channels)
