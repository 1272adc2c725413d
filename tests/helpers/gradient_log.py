"""Record the gradients every optimiser step applies, to compare two runs' arithmetic.

    with recorded_gradients() as steps:
        train(...)
    steps[k][i]  # the gradient of parameter i (in param_groups order) at step k, as applied

A DDP step applies the all-reduced (averaged) gradient, so a run in two processes can be set
against one in a single process gradient by gradient, before Adam magnifies the difference.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}


@contextmanager
def recorded_gradients():
    steps: list[list[torch.Tensor]] = []

    def record(optimizer, args, kwargs):
        steps.append([p.grad.detach().clone() for group in optimizer.param_groups for p in group["params"]])

    handle = register_optimizer_step_pre_hook(record)
    try:
        yield steps
    finally:
        handle.remove()


def summation_bound(terms: int, dtype: torch.dtype = torch.float32) -> float:
    """Higham's bound γ_n = n·u / (1 − n·u) on the relative error of summing ``terms`` numbers in
    any order (relative to the sum of their magnitudes): what a change of order can do."""
    nu = terms * UNIT_ROUNDOFF[dtype]
    return nu / (1 - nu)
