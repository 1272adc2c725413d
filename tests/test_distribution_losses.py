"""mean-cov, sliced-wasserstein and mrf against brute-force references and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from styletransfer.errors import UsageError
from styletransfer.losses import build_style_loss, functional

D = torch.float64


def feats(*shape, seed=0, shift=0.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D) + shift


# --- mean-cov --------------------------------------------------------------------------------


def sqrtm_reference(a):
    """√A by eigh, written out: the reference the custom Function must agree with."""
    w, v = torch.linalg.eigh(a)
    return v @ torch.diag(w.clamp_min(0).sqrt()) @ v.T


def bures_reference(x, y):
    """(1/C)·W2² between the two Gaussians, by hand in float64, with the other operand order:
    tr(Σx + Σy − 2(Σx^½ Σy Σx^½)^½) (the trace is the same either way)."""
    fx, fy = x[0].reshape(x.shape[1], -1), y[0].reshape(y.shape[1], -1)  # (C, M), (C, M')
    mx, my = fx.mean(1), fy.mean(1)
    sx = (fx - mx[:, None]) @ (fx - mx[:, None]).T / fx.shape[1]  # biased
    sy = (fy - my[:, None]) @ (fy - my[:, None]).T / fy.shape[1]
    rx = sqrtm_reference(sx)
    value = ((mx - my) ** 2).sum() + torch.trace(sx + sy - 2 * sqrtm_reference(rx @ sy @ rx))
    return value.item() / fx.shape[0]


def test_bures_matches_an_eigh_reference_for_images_of_different_sizes():
    x, y = feats(1, 5, 4, 6, seed=1), feats(1, 5, 7, 3, seed=2, shift=0.3) * 1.5
    expected = bures_reference(x, y)
    assert functional.mean_cov_loss(x, y).item() == pytest.approx(expected, rel=1e-10)
    assert build_style_loss("mean-cov", y)(x).item() == pytest.approx(expected, rel=1e-10)


def test_bures_closed_form_in_one_dimension_and_for_diagonal_covariances():
    # C = 1: W2² of two 1-D Gaussians is (μx − μy)² + (σx − σy)² (biased σ)
    x, y = feats(1, 1, 9, seed=3), feats(1, 1, 14, seed=4, shift=0.7) * 2
    by_hand = (x.mean() - y.mean()) ** 2 + (x.std(unbiased=False) - y.std(unbiased=False)) ** 2
    assert functional.mean_cov_loss(x, y).item() == pytest.approx(by_hand.item(), rel=1e-10)
    # uncorrelated channels (centred rows orthogonal): Σ diagonal, so the loss is bn-stats' formula
    pattern4 = torch.tensor([[1.0, -1, 1, -1], [1, 1, -1, -1]], dtype=D)
    pattern8 = torch.tensor([[1.0, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1]], dtype=D)
    x = (pattern4 * torch.tensor([[2.0], [0.5]], dtype=D) + torch.tensor([[1.0], [-1.0]], dtype=D))[None]
    y = (pattern8 * torch.tensor([[0.5], [3.0]], dtype=D) + torch.tensor([[0.0], [2.0]], dtype=D))[None]
    expected = ((1 - 0) ** 2 + (2 - 0.5) ** 2 + (-1 - 2) ** 2 + (0.5 - 3) ** 2) / 2
    assert functional.mean_cov_loss(x, y).item() == pytest.approx(expected, rel=1e-10)
    assert build_style_loss("mean-cov", y)(x).item() == pytest.approx(expected, rel=1e-10)
    assert functional.bn_stats_loss(x, y).item() == pytest.approx(expected, rel=1e-6)  # bn-stats has σ = √(var + 1e-8)


def test_sqrt_function_gradcheck_on_a_random_spd_matrix():
    b = torch.randn(4, 4, generator=torch.Generator().manual_seed(5), dtype=D)
    a = (b @ b.T + 0.5 * torch.eye(4, dtype=D)).requires_grad_(True)
    root = functional.sqrtm_psd(a)
    assert torch.allclose(root @ root, a, atol=1e-12) and torch.allclose(root, sqrtm_reference(a.detach()))
    assert torch.autograd.gradcheck(functional.sqrtm_psd, (a,))
    # and the whole Bures loss, through both square roots and the covariance
    x, y = feats(1, 3, 4, 4, seed=6).requires_grad_(True), feats(1, 3, 5, 3, seed=7)
    assert torch.autograd.gradcheck(lambda x: functional.mean_cov_loss(x, y), (x,))


@pytest.mark.parametrize("case", ["fewer positions than channels", "flat channel", "singular target"])
def test_bures_gradient_is_finite_and_right_for_singular_covariances(case):
    """Finite, and equal to central finite differences along random directions: within 5 %, the
    perturbation of the ε that keeps √ differentiable at 0 (measured: 0.004–2.7 %); a wrong
    factor or sign is off by 50 % or more."""
    x, y = feats(1, 6, 4, 5, seed=8, shift=0.2), feats(1, 6, 5, 7, seed=9)
    if case == "fewer positions than channels":
        x = feats(1, 6, 1, 3, seed=10)  # M = 3 < C = 6: Σx has rank 2
    elif case == "flat channel":
        x[0, 2] = 1.5  # zero variance in channel 2
    else:
        y = feats(1, 6, 1, 2, seed=11)  # Σy of rank 1: Σy^½ singular
    x.requires_grad_(True)
    for loss in (build_style_loss("mean-cov", y)(x), functional.mean_cov_loss(x, y)):
        assert torch.isfinite(loss).all() and loss.item() > 0
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    step = 1e-6
    for seed in range(3):
        direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(100 + seed), dtype=D)
        with torch.no_grad():
            ahead = functional.mean_cov_loss(x + step * direction, y)
            numeric = (ahead - functional.mean_cov_loss(x - step * direction, y)) / (2 * step)
        assert float((grad * direction).sum()) == pytest.approx(float(numeric.sum()), rel=5e-2), seed


def test_mean_cov_is_zero_when_input_equals_target_in_both_forms():
    y = feats(1, 8, 6, 6, seed=12, shift=0.4)
    for form in ("bures", "coral"):
        assert abs(build_style_loss("mean-cov", y, form=form)(y).item()) < 1e-10
    # rank-deficient (M = 4 < C = 8): the zero eigenvalues come out of eigh as ±1e-16, and their
    # square roots as 1e-8, so "zero" holds to ~1e-8 of the scale (tr Σ / C ≈ 1 here), not to 1e-16
    flat = feats(1, 8, 1, 4, seed=13)
    assert abs(build_style_loss("mean-cov", flat)(flat).item()) < 1e-6


def test_coral_form_by_hand():
    x = torch.tensor([[[1.0, 2.0, 6.0], [0.0, 1.0, -1.0]]], dtype=D)  # (1, C=2, M=3)
    y = torch.tensor([[[2.0, 0.0, 1.0, 1.0], [3.0, 1.0, 1.0, 3.0]]], dtype=D)  # M' = 4

    def cov(rows):
        m = len(rows[0])
        means = [sum(r) / m for r in rows]
        return [[sum((rows[i][k] - means[i]) * (rows[j][k] - means[j]) for k in range(m)) / m for j in range(2)]
                for i in range(2)], means

    (sx, mx), (sy, my) = cov(x[0].tolist()), cov(y[0].tolist())
    expected = (sum((a - b) ** 2 for a, b in zip(mx, my)) / 2
                + sum((sx[i][j] - sy[i][j]) ** 2 for i in range(2) for j in range(2)) / (4 * 2**2))
    assert functional.mean_cov_loss(x, y, "coral").item() == pytest.approx(expected, rel=1e-12)
    assert build_style_loss("mean-cov", y, form="coral")(x).item() == pytest.approx(expected, rel=1e-12)


def test_mean_cov_form_is_checked():
    with pytest.raises(UsageError, match=r"got 'bures2' \(did you mean 'bures'\?\)"):
        build_style_loss("mean-cov", feats(1, 3, 4, 4), form="bures2")


# --- sliced-wasserstein ----------------------------------------------------------------------


def test_sliced_wasserstein_is_the_exact_1d_w2_for_one_channel():
    """C = 1: every unit direction is ±1, and both give the mean squared sorted difference."""
    x, y = feats(1, 1, 3, 4, seed=14), feats(1, 1, 2, 6, seed=15, shift=1.0)  # M = M' = 12
    sx, sy = sorted(x.flatten().tolist()), sorted(y.flatten().tolist())
    expected = sum((a - b) ** 2 for a, b in zip(sx, sy)) / 12
    for sign in (1.0, -1.0):
        value = functional.sliced_wasserstein(x, y, torch.tensor([[sign]], dtype=D))
        assert value.item() == pytest.approx(expected, rel=1e-12)
    module = build_style_loss("sliced-wasserstein", y, torch.Generator().manual_seed(0))
    assert module(x).item() == pytest.approx(expected, rel=1e-12)


def test_sliced_wasserstein_unequal_counts_interpolate_the_target_quantiles():
    # by hand: y sorted (0, 1, 2) has quantile knots at levels 1/6, 1/2, 5/6; x's M = 2 levels are
    # 1/4 and 3/4, which fall a quarter of the way from 0 to 1 and three quarters from 1 to 2
    x, y = torch.tensor([[[2.0, 0.0]]], dtype=D), torch.tensor([[[1.0, 2.0, 0.0]]], dtype=D)
    expected = ((0 - 0.25) ** 2 + (2 - 1.75) ** 2) / 2
    assert functional.sliced_wasserstein(x, y, torch.ones(1, 1, dtype=D)).item() == pytest.approx(expected, rel=1e-12)
    # more and fewer samples than the target, against numpy's piecewise-linear interpolation
    y = feats(1, 1, 7, seed=16)
    knots = (np.arange(7) + 0.5) / 7
    for m in (3, 11):
        x = feats(1, 1, m, seed=17 + m)
        target = np.interp((np.arange(m) + 0.5) / m, knots, np.sort(y.flatten().numpy()))
        expected = np.mean((np.sort(x.flatten().numpy()) - target) ** 2)
        assert functional.sliced_wasserstein(x, y, torch.ones(1, 1, dtype=D)).item() == pytest.approx(expected, rel=1e-12)


def test_sliced_wasserstein_is_zero_for_a_permutation_of_the_same_positions():
    y = feats(1, 5, 4, 6, seed=18)
    order = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    x = y.flatten(2)[..., order].reshape(1, 5, 3, 8)  # same samples, another order and shape
    module = build_style_loss("sliced-wasserstein", y, torch.Generator().manual_seed(2), directions=16)
    for _ in range(3):
        assert abs(module(x).item()) < 1e-12
    assert abs(module.denominator(x).item()) < 1e-12


def test_sliced_wasserstein_draws_new_directions_on_every_call():
    y, x = feats(1, 4, 5, 5, seed=19), feats(1, 4, 4, 6, seed=20, shift=0.5)
    module = build_style_loss("sliced-wasserstein", y, torch.Generator().manual_seed(3))
    assert module.fixed_directions.shape == (4, 4)  # K = C by default
    assert torch.allclose(module.fixed_directions.norm(dim=1), torch.ones(4, dtype=D))
    reference = module.denominator(x)
    first = module(x)  # the first call uses the set drawn at construction: the denominator's value
    assert torch.equal(first, reference)
    seen = [module.last_directions]
    values = [first]
    for _ in range(3):
        values.append(module(x))
        seen.append(module.last_directions)
        # formula_value recomputes the latest call from the directions it used
        assert values[-1].item() == pytest.approx(module.formula_value(x, y).item(), rel=1e-12)
    assert len({v.item() for v in values}) == 4  # every call another value
    assert all(not torch.equal(a, b) for a, b in zip(seen, seen[1:]))
    assert torch.equal(module.denominator(x), reference)  # fixed, and ≥ 0
    # the module draws from the generator it was built with: the same seed, the same sequence
    again = build_style_loss("sliced-wasserstein", y, torch.Generator().manual_seed(3))
    assert torch.equal(torch.stack([again(x) for _ in range(4)]), torch.stack(values))
    # without a generator it uses torch's global one
    with torch.random.fork_rng():
        torch.manual_seed(4)
        free = build_style_loss("sliced-wasserstein", y, None, directions=7)
        a = torch.stack([free(x) for _ in range(3)])
        torch.manual_seed(4)
        free = build_style_loss("sliced-wasserstein", y, None, directions=7)
        assert torch.equal(torch.stack([free(x) for _ in range(3)]), a)
    assert free.last_directions.shape == (7, 4)


def test_sliced_wasserstein_gradient_reaches_the_input():
    y = feats(1, 3, 4, 4, seed=21)
    x = feats(1, 3, 5, 5, seed=22, shift=0.3).requires_grad_(True)
    module = build_style_loss("sliced-wasserstein", y, torch.Generator().manual_seed(5))
    module(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # C = 1, equal counts: d/dx_i = 2 (x_i − y_matched(i)) / M, y matched by rank
    x1, y1 = feats(1, 1, 6, seed=23).requires_grad_(True), feats(1, 1, 6, seed=24)
    functional.sliced_wasserstein(x1, y1, torch.ones(1, 1, dtype=D)).sum().backward()
    ranks = x1.detach().flatten().argsort().argsort()
    expected = 2 * (x1.detach().flatten() - y1.flatten().sort().values[ranks]) / 6
    assert torch.allclose(x1.grad.flatten(), expected, atol=1e-12)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "many"])
def test_sliced_wasserstein_directions_option_is_checked(bad):
    with pytest.raises(UsageError, match="sliced-wasserstein directions must be a positive whole number"):
        build_style_loss("sliced-wasserstein", feats(1, 3, 4, 4), directions=bad)


# --- mrf -------------------------------------------------------------------------------------


def patches_by_loop(f, k, stride):
    """Every k×k patch of f (C, H, W), row-major, flattened."""
    _, h, w = f.shape
    return [f[:, i:i + k, j:j + k].reshape(-1) for i in range(0, h - k + 1, stride) for j in range(0, w - k + 1, stride)]


def mrf_by_loop(x, y, k, stride=1):
    """Brute force: each generated patch against every style patch by cosine, then the mean
    squared difference to the best one; differentiable in x (the choice itself is not)."""
    generated, style = patches_by_loop(x[0], k, stride), patches_by_loop(y[0], k, stride)
    total = 0.0
    for p in generated:
        cosines = [float((p.detach() * s).sum() / (p.detach().norm() * s.norm())) for s in style]
        best = style[max(range(len(style)), key=cosines.__getitem__)]
        total = total + ((p - best) ** 2).sum()
    return total / (len(generated) * generated[0].numel())


@pytest.mark.parametrize("stride", [1, 2])
def test_mrf_matches_a_brute_force_loop_also_in_chunks(stride):
    y = feats(1, 2, 4, 5, seed=25)
    x = feats(1, 2, 5, 6, seed=26, shift=0.2).requires_grad_(True)  # P = 12 (stride 1), Q = 6
    expected = mrf_by_loop(x, y, 3, stride)
    (expected_grad,) = torch.autograd.grad(expected, x)
    module = build_style_loss("mrf", y, stride=stride)
    for chunk in (functional.MRF_CHUNK, 5, 1):  # 5 < P and < Q: both loops of the matching run in blocks
        value = functional.mrf_loss(x, y, 3, stride, chunk=chunk)
        assert value.item() == pytest.approx(expected.item(), rel=1e-12)
        module.chunk = chunk
        assert module(x).item() == pytest.approx(expected.item(), rel=1e-12)
        (grad,) = torch.autograd.grad(module(x).sum(), x)
        assert torch.allclose(grad, expected_grad, atol=1e-14)
    # a batch: each item matched on its own
    other = feats(1, 2, 5, 6, seed=27)
    batch = functional.mrf_loss(torch.cat([x.detach(), other]), y, 3, stride, chunk=5)
    assert torch.allclose(batch, torch.stack([mrf_by_loop(x.detach(), y, 3, stride), mrf_by_loop(other, y, 3, stride)]))


def test_mrf_is_zero_when_generated_equals_style():
    y = feats(1, 3, 6, 7, seed=28)
    module = build_style_loss("mrf", y)
    module.chunk = 4
    assert module(y).item() == 0.0
    assert functional.mrf_loss(y, y, 3, chunk=7).item() == 0.0


def test_mrf_nearest_neighbour_is_by_normalised_cross_correlation_not_l2():
    """1×1 patches: x = (2, 0.5). L2 would pick s₀ = (1, 0) (distance² 1.25); the cosine picks
    s₁ = (10, 1) (cos 0.989 against 0.970), 64.25 away in squared distance."""
    y = torch.tensor([[[[1.0, 10.0]], [[0.0, 1.0]]]], dtype=D)  # (1, C=2, 1, 2): s₀ = (1, 0), s₁ = (10, 1)
    x = torch.tensor([[[[2.0]], [[0.5]]]], dtype=D)  # (1, 2, 1, 1)
    patches, style = functional.extract_patches(x, 1), functional.extract_patches(y, 1)
    assert functional.mrf_matches(patches, functional.unit_patches(style)).tolist() == [[1]]
    expected = ((2 - 10) ** 2 + (0.5 - 1) ** 2) / 2  # mean over the patch's C·k² = 2 entries
    assert functional.mrf_loss(x, y, patch_size=1).item() == pytest.approx(expected, rel=1e-12)
    assert build_style_loss("mrf", y, patch_size=1)(x).item() == pytest.approx(expected, rel=1e-12)


def test_mrf_gradient_reaches_the_input_and_small_maps_use_smaller_patches():
    y = feats(1, 3, 5, 5, seed=29)
    x = feats(1, 3, 2, 4, seed=30, shift=0.3).requires_grad_(True)  # 2 rows: 3×3 patches do not fit
    module = build_style_loss("mrf", y)
    loss = module(x)
    assert loss.item() == pytest.approx(mrf_by_loop(x.detach(), y, 2).item(), rel=1e-12)  # k = 2 on both
    assert loss.item() == pytest.approx(module.formula_value(x, y).item(), rel=1e-12)
    loss.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    tiny = build_style_loss("mrf", feats(1, 3, 1, 1, seed=31))  # a 1×1 style map: single positions
    assert tiny(feats(1, 3, 4, 4, seed=32)).shape == (1,)


@pytest.mark.parametrize("option", ["patch_size", "stride"])
def test_mrf_options_are_checked(option):
    with pytest.raises(UsageError, match=f"mrf {option} must be a positive whole number, got 0"):
        build_style_loss("mrf", feats(1, 3, 4, 4), **{option: 0})
    assert math.isclose(build_style_loss("mrf", feats(1, 3, 4, 4), **{option: 2.0}).__dict__[option], 2)
