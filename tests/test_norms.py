"""Every registered normalization gets the same checks: what its registry entry says about its
statistics must be what the module does."""

from __future__ import annotations

import pytest
import torch

from styletransfer.errors import UsageError
from styletransfer.norms import NORMS, make_norm

CHANNELS = 8


def batch(seed: int, size: int = 4) -> torch.Tensor:
    return torch.randn(size, CHANNELS, 6, 7, generator=torch.Generator().manual_seed(seed)) * 3 + 1


def apply(module, x: torch.Tensor) -> torch.Tensor:
    return x if module is None else module(x)


@pytest.mark.parametrize("name", NORMS.names())
def test_shape_and_statistics_entry(name):
    entry = NORMS.get(name)
    assert entry.statistics in ("none", "batch", "image")
    module = make_norm(name, CHANNELS)
    assert (module is None) == (entry.statistics == "none")
    x = batch(0)
    assert apply(module, x).shape == x.shape


@pytest.mark.parametrize("name", NORMS.names())
def test_batch_dependence_in_training_is_what_the_entry_says(name):
    """Image 0's output with two different sets of batch-mates: equal unless the statistics are
    the batch's."""
    torch.manual_seed(0)
    module = make_norm(name, CHANNELS)
    if module is not None:
        module.train()
    first, second = batch(1), batch(2)
    second[0] = first[0]  # the same image, other batch-mates
    out_first, out_second = apply(module, first)[0], apply(module, second)[0]
    changed = not torch.allclose(out_first, out_second, atol=1e-6)
    assert changed == NORMS.get(name).batch_statistics


@pytest.mark.parametrize("name", NORMS.names())
def test_pointwise_at_inference_is_what_the_entry_says(name):
    """In evaluation mode, a crop's output equals the crop of the whole output exactly when the
    norm is pointwise there (what makes AdaIN decoders with such norms tileable)."""
    torch.manual_seed(0)
    module = make_norm(name, CHANNELS)
    if module is not None:
        module.train()
        apply(module, batch(3, size=8))  # running averages that are not the identity
        module.eval()
    x = batch(4, size=2)
    whole = apply(module, x)[..., :3, :4]
    crop = apply(module, x[..., :3, :4].contiguous())
    assert torch.allclose(whole, crop, atol=1e-6) == NORMS.get(name).pointwise_at_inference


def test_unknown_norm_suggests_the_closest():
    with pytest.raises(UsageError, match="did you mean 'instance'"):
        make_norm("instanse", CHANNELS)
