"""Normalization layers by name, so a network takes a norm name instead of hard-coding one.

Each registry entry says what its statistics are taken over, which is the whole point of the
project's ablations: ``none`` has none; ``batch`` takes them over the batch in training and uses
running averages in evaluation (PyTorch's convention), so at inference it is a per-channel affine
map; ``instance``, ``layer`` and ``group`` take them over each image, in training and evaluation
alike (instance: ``track_running_stats=False``, as in Ulyanov et al.).

``none`` adds no module at all, so a decoder built with it has exactly pytorch-AdaIN's children
(and state-dict keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from torch import nn

from .registry import Registry

Statistics = Literal["none", "batch", "image"]


@dataclass(frozen=True)
class Norm:
    """A normalization: how to build it for a channel count, and where its statistics come from."""

    build: Callable[[int], nn.Module | None]
    statistics: Statistics

    @property
    def batch_statistics(self) -> bool:
        """Whether an image's output depends on its batch-mates (in training mode)."""
        return self.statistics == "batch"

    @property
    def pointwise_at_inference(self) -> bool:
        """Whether, in evaluation mode, each position is transformed on its own (so an image can
        be processed in tiles): no norm, or batch norm with its running averages."""
        return self.statistics in ("none", "batch")


NORMS: Registry[Norm] = Registry("normalization")


def _register(name: str, statistics: Statistics):
    def decorator(build: Callable[[int], nn.Module | None]):
        NORMS.register(name)(Norm(build, statistics))
        return build

    return decorator


@_register("none", "none")
def _none(channels: int) -> None:
    return None


@_register("batch", "batch")
def _batch(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels)


@_register("instance", "image")
def _instance(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


@_register("layer", "image")
def _layer(channels: int) -> nn.Module:
    return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W), per image


@_register("group", "image")
def _group(channels: int) -> nn.Module:
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def make_norm(name: str, channels: int) -> nn.Module | None:
    """The named normalization for ``channels`` channels, or None for ``none``."""
    return NORMS.get(name).build(channels)
