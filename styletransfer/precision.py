"""Numeric precision of the networks, by name: ``fp32``, ``bf16``, or ``auto`` (bf16 where the
device computes it natively, fp32 elsewhere: chosen by detected capability, never assumed).

``bf16`` runs the convolutions in bfloat16 (8 bits of mantissa, float32's exponent range, so no
loss scaling is needed). It is fast where the hardware computes bfloat16 natively: NVIDIA GPUs
from Ampere on, and CPUs with AVX512-BF16 or AMX. Elsewhere it still runs, emulated and slower,
with a warning. Statistics (means, standard deviations, losses) stay in float32 or float64.
"""

from __future__ import annotations

import warnings

import torch

from .registry import Registry

PRECISIONS: Registry[torch.dtype] = Registry("precision")
PRECISIONS.register("fp32")(torch.float32)
PRECISIONS.register("bf16")(torch.bfloat16)
DEFAULT_PRECISION = "fp32"
AUTO = "auto"  # bf16 where native_bf16(device), else fp32


class PrecisionWarning(UserWarning):
    """A precision that runs, but not natively (slowly) on this device."""


def dtype_of(name: str) -> torch.dtype:
    """The torch dtype of a precision name; unknown names are a UsageError with a suggestion."""
    return PRECISIONS.get(name)


def precision_names() -> tuple[str, ...]:
    """What ``--precision`` accepts: ``auto`` and every registered precision."""
    return (AUTO, *PRECISIONS.names())


def validate_precision(name: str) -> str:
    """``name`` if it is ``auto`` or a registered precision; a UsageError with a suggestion otherwise."""
    if name != AUTO:
        PRECISIONS.get(name)
    return name


def resolve_precision(name: str, device: torch.device | str) -> str:
    """The registered precision ``name`` stands for on ``device``: ``auto`` → bf16 where the device
    computes bfloat16 natively (AVX512-BF16 or AMX CPUs, Ampere+ GPUs), fp32 elsewhere."""
    if validate_precision(name) == AUTO:
        return "bf16" if native_bf16(device) else "fp32"
    return name


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively (not by conversion to float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, check, lambda: False)()) for check in checks)
    return False


def autocast_call(dtype: torch.dtype, network, *args):
    """``network(*args)`` under autocast to ``dtype``, its outputs (a tensor or a dict of them) cast
    back to float32 for statistics and losses; float32 runs the network as it is."""
    if dtype == torch.float32:
        return network(*args)
    with torch.autocast(args[0].device.type, dtype=dtype):
        out = network(*args)
    return {k: v.float() for k, v in out.items()} if isinstance(out, dict) else out.float()


def check_precision(name: str, device: torch.device | str) -> torch.dtype:
    """The dtype for ``name`` (``auto`` resolved) on ``device``; warns when bf16 would be emulated (slow)."""
    dtype = dtype_of(resolve_precision(name, device))
    if dtype == torch.bfloat16 and not native_bf16(device):
        warnings.warn(f"--precision bf16: {torch.device(device)} has no native bfloat16 support detected, so it "
                      "runs emulated and may be slower than fp32; use --precision fp32", PrecisionWarning,
                      stacklevel=3)
    return dtype
