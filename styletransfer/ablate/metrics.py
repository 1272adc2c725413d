"""Pure metrics of the experiments: batch dependence, accuracy, and the adaBN verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

# A gain (in accuracy points, 0-1 scale) below this is "no clear effect".
CLEAR_GAIN = 0.01


@dataclass(frozen=True)
class BatchDependence:
    """How much one image's output changes when the rest of its batch changes.

    For each target image, ``compositions`` batches of ``batch_size`` are built that contain it
    (at a random position) together with randomly drawn, pairwise different sets of other
    images; its output in every composition is compared with its output in the first one.
    """

    max_abs: float  # max |out_k − out_0| over targets, compositions and pixels
    mean_rel_l2: float  # mean over targets and compositions of ‖out_k − out_0‖ / ‖out_0‖
    max_rel_l2: float
    targets: int
    compositions: int
    batch_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def batch_dependence(fn: Callable[[Tensor], Tensor], pool: Tensor, *, batch_size: int, compositions: int = 4,
                     targets: int | None = None, generator: torch.Generator | None = None) -> BatchDependence:
    """Measure the batch dependence of ``fn`` (batch → per-item outputs) on a pool of inputs.

    ``pool`` is (P, ...); the first ``targets`` items (default all) are the targets. Each target
    needs ``batch_size − 1`` others, so P must be larger than ``batch_size``. A function that
    treats every item independently gives 0 up to float precision.
    """
    count = pool.shape[0]
    if batch_size < 2 or compositions < 2:
        raise ValueError("batch dependence needs batch_size ≥ 2 and compositions ≥ 2")
    if count < batch_size or math.comb(count - 1, batch_size - 1) < compositions:
        raise ValueError(f"a pool of {count} items cannot give {compositions} different batches of {batch_size} "
                         "around one item: use a larger pool")
    targets = count if targets is None else min(targets, count)
    max_abs, rel = 0.0, []
    with torch.no_grad():
        for target in range(targets):
            others = torch.tensor([i for i in range(count) if i != target])
            reference, used = None, set()
            for _ in range(compositions):
                chosen = others[torch.randperm(len(others), generator=generator)[: batch_size - 1]]
                while frozenset(chosen.tolist()) in used:  # every composition has other partners
                    chosen = others[torch.randperm(len(others), generator=generator)[: batch_size - 1]]
                used.add(frozenset(chosen.tolist()))
                position = int(torch.randint(batch_size, (1,), generator=generator))
                order = torch.cat([chosen[:position], torch.tensor([target]), chosen[position:]])
                output = fn(pool[order])[position].double()  # this target's output, (...)
                if reference is None:
                    reference = output
                    continue
                difference = output - reference
                max_abs = max(max_abs, float(difference.abs().max()))
                rel.append(float(difference.norm() / reference.norm().clamp_min(torch.finfo(torch.float64).tiny)))
    return BatchDependence(max_abs=max_abs, mean_rel_l2=sum(rel) / len(rel), max_rel_l2=max(rel),
                           targets=targets, compositions=compositions, batch_size=batch_size)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of rows whose arg-max is the label."""
    return float((logits.argmax(dim=1) == labels).float().mean())


def gain_verdict(gains: Sequence[float], clear: float = CLEAR_GAIN) -> str:
    """'helps' when every seed gains and the mean gain exceeds ``clear``; 'hurts' when every
    seed loses and the mean loss exceeds it; otherwise 'no clear effect'."""
    mean = sum(gains) / len(gains)
    if all(g > 0 for g in gains) and mean > clear:
        return "helps"
    if all(g < 0 for g in gains) and mean < -clear:
        return "hurts"
    return "no clear effect"
