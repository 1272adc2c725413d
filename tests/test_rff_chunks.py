"""The Gaussian-kernel MMD's random-feature embedding in blocks of positions: same value, same gradient."""

from __future__ import annotations

import math

import torch

from styletransfer.losses import build_style_loss
from styletransfer.losses import functional as LF


def reference_embedding(features, w, b):
    """The whole (N, D, M) projection at once, differentiated by autograd."""
    f = LF.flatten(features)  # (N, C, M)
    projection = torch.einsum("dc,ncm->ndm", w, f) + b.view(1, -1, 1)
    return torch.cos(projection).mean(dim=-1) * math.sqrt(2.0 / w.shape[0])


def test_blocked_embedding_equals_the_whole_projection_in_value_and_gradient():
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(2, 6, 5, 7, generator=generator, dtype=torch.float64)  # M = 35 positions
    w, b = LF.random_fourier_frequencies(6, 16, sigma=0.7, generator=generator)
    w, b = w.double(), b.double()
    weights = torch.randn(2, 16, generator=generator, dtype=torch.float64)  # a generic upstream gradient
    expected_x = features.clone().requires_grad_(True)
    expected = reference_embedding(expected_x, w, b)
    (expected * weights).sum().backward()
    for chunk in (1, 8, 34, 35, 1000):  # blocks that do and do not divide M
        x = features.clone().requires_grad_(True)
        value = LF.rff_mean_embedding(x, w, b, chunk=chunk)
        torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
        (value * weights).sum().backward()
        torch.testing.assert_close(x.grad, expected_x.grad, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: LF.rff_mean_embedding(x, w, b, chunk=4), (features.clone().requires_grad_(True),))


def test_the_registered_loss_keeps_its_value_in_float32():
    generator = torch.Generator().manual_seed(1)
    target, features = torch.rand(1, 8, 20, 30, generator=generator), torch.rand(1, 8, 20, 30, generator=generator)
    module = build_style_loss("mmd-rbf", target, torch.Generator().manual_seed(2))
    whole = LF._sq_norm(reference_embedding(features, module.frequencies, module.phases) - module.target_stats[0])
    torch.testing.assert_close(module(features), whole, rtol=1e-5, atol=1e-9)
    small = LF._sq_norm(LF.rff_mean_embedding(features, module.frequencies, module.phases, chunk=7)
                        - module.target_stats[0])
    torch.testing.assert_close(small, whole, rtol=1e-5, atol=1e-9)
