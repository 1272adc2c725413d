"""The style losses against hand computations and the identities in REFERENCE.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from styletransfer.errors import UsageError
from styletransfer.losses import STYLE_LOSSES, build_style_loss, functional

D = torch.float64  # exact identities deserve double precision


def feats(*shape, seed=0, shift=0.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D) + shift


# --- every registered loss gets the same checks ---------------------------------------------


@pytest.mark.parametrize("name", STYLE_LOSSES.names())
def test_zero_when_input_equals_target(name):
    target = feats(1, 6, 5, 7)
    loss = build_style_loss(name, target, torch.Generator().manual_seed(0))
    assert loss(target).abs().max().item() < 1e-10


@pytest.mark.parametrize("name", STYLE_LOSSES.names())
def test_finite_positive_and_gradient_reaches_input(name):
    target = feats(1, 6, 5, 7, seed=1)
    x = feats(1, 6, 4, 9, seed=2, shift=0.5).requires_grad_(True)  # another size on purpose
    loss = build_style_loss(name, target, torch.Generator().manual_seed(0))(x)
    assert loss.shape == (1,) and torch.isfinite(loss).all() and loss.item() > 0
    loss.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", STYLE_LOSSES.names())
def test_batch_items_are_independent(name):
    target = feats(1, 6, 5, 5, seed=1)
    generator = torch.Generator().manual_seed(0)
    module = build_style_loss(name, target, generator)
    a, b = feats(1, 6, 5, 5, seed=3), feats(1, 6, 5, 5, seed=4)
    if name == "mmd-rbf":  # resampling estimators aside, the default estimator is deterministic
        assert module.estimator == "rff"
    module(a)  # a loss that redraws random parameters per call (sliced-wasserstein) draws them from its
    state = generator.get_state()  # generator: restarting it before each call below gives each the same draws

    def call(x):
        generator.set_state(state)
        return module(x)

    together = call(torch.cat([a, b]))
    assert torch.allclose(together, torch.cat([call(a), call(b)]))


def test_unknown_loss_suggests_the_closest_name():
    with pytest.raises(UsageError, match="did you mean 'gram'"):
        STYLE_LOSSES.get("gramm")


# --- formulas by hand ------------------------------------------------------------------------


def test_gram_loss_matches_gatys_formula_by_hand():
    x, y = feats(1, 3, 2, 2, seed=5), feats(1, 3, 2, 2, seed=6)
    fx, fy = x.reshape(3, 4), y.reshape(3, 4)
    c, m = 3, 4
    g, a = fx @ fx.T, fy @ fy.T
    expected = ((g - a) ** 2).sum() / (4 * c**2 * m**2)
    assert functional.gram_loss(x, y).item() == pytest.approx(expected.item(), rel=1e-12)


def test_gram_equals_poly_mmd_times_constant():
    """Gram loss = MMD²(k=(xᵀy)²)/(4C²), also when the two images differ in size.

    Independent sides: Gatys' formula written out with explicit Grams, against the quadratic-time
    kernel estimator (every pair's (xᵢᵀyⱼ)²; no Gram matrix anywhere), and the registered modules
    of both losses against the same number."""
    for c, (m1, m2) in [(8, (36, 36)), (16, (20, 45))]:
        x, y = feats(1, c, m1, seed=7), feats(1, c, m2, seed=8, shift=0.3)
        fx, fy = x[0], y[0]  # (C, M), (C, M')
        gatys = (((fx @ fx.T) / m1 - (fy @ fy.T) / m2) ** 2).sum() / (4 * c**2)  # = Σ(G−A)²/(4C²M²) when M = M'
        kernel = functional.mmd_exact(x, y, lambda a, b: (a @ b) ** 2) / (4 * c**2)
        assert gatys.item() == pytest.approx(kernel.item(), rel=1e-9)
        assert build_style_loss("gram", y)(x).item() == pytest.approx(kernel.item(), rel=1e-9)
        assert (build_style_loss("mmd-poly", y)(x) / (4 * c**2)).item() == pytest.approx(kernel.item(), rel=1e-9)


def test_poly_mmd_closed_form_equals_quadratic_estimator_and_c_term():
    x, y = feats(1, 5, 30, seed=9), feats(1, 5, 22, seed=10, shift=0.4)
    for c in (0.0, 0.5, 2.0):
        exact = functional.mmd_exact(x, y, lambda a, b: (a @ b + c) ** 2)
        assert functional.mmd_poly(x, y, 2, c).item() == pytest.approx(exact.item(), rel=1e-10)
        # the c-term: MMD²_c − MMD²_0 = 2c‖μx − μy‖²
        mean_gap = ((x.mean(-1) - y.mean(-1)) ** 2).sum()
        delta = functional.mmd_poly(x, y, 2, c) - functional.mmd_poly(x, y, 2, 0.0)
        assert delta.item() == pytest.approx((2 * c * mean_gap).item(), rel=1e-10, abs=1e-12)


def test_poly_mmd_other_degrees_use_the_exact_estimator():
    x, y = feats(1, 4, 12, seed=11), feats(1, 4, 15, seed=12)
    exact = functional.mmd_exact(x, y, lambda a, b: (a @ b + 1.0) ** 3)
    loss = build_style_loss("mmd-poly", y, degree=3, c=1.0)(x)
    assert loss.item() == pytest.approx(exact.item(), rel=1e-10)


def test_mmd_linear_is_squared_mean_distance():
    x, y = feats(1, 4, 3, 3, seed=13), feats(1, 4, 5, 2, seed=14, shift=1.0)
    by_hand = sum((x[0, ch].mean() - y[0, ch].mean()) ** 2 for ch in range(4))
    assert functional.mmd_linear(x, y).item() == pytest.approx(by_hand.item(), rel=1e-12)
    exact = functional.mmd_exact(x, y, lambda a, b: a @ b)
    assert functional.mmd_linear(x, y).item() == pytest.approx(exact.item(), rel=1e-9)


def test_bn_stats_by_hand():
    x = torch.tensor([[[1.0, 3.0], [2.0, 2.0]]], dtype=D)  # (1, C=2, M=2): means 2, 2; biased stds 1, 0
    y = torch.tensor([[[0.0, 0.0, 0.0, 4.0], [5.0, 5.0, 5.0, 5.0]]], dtype=D)  # means 1, 5; stds √3, 0
    expected = ((2 - 1) ** 2 + (1 - math.sqrt(3)) ** 2 + (2 - 5) ** 2 + 0) / 2
    # σ = √(var + 1e-8): the ε moves the value by ~1e-9 here
    assert functional.bn_stats_loss(x, y).item() == pytest.approx(expected, rel=1e-8)
    assert build_style_loss("bn-stats", y)(x).item() == pytest.approx(expected, rel=1e-8)


def test_bn_stats_gradient_is_finite_for_a_channel_without_variance():
    """A flat channel has var = 0, where d√var/dvar = ∞; without an ε the gradient was 0·∞ = NaN."""
    x = torch.tensor([[[2.0, 2.0, 2.0], [1.0, 3.0, 5.0]]], dtype=D, requires_grad=True)  # channel 0 flat
    y = torch.tensor([[[0.0, 1.0, 2.0], [1.0, 1.0, 4.0]]], dtype=D)
    for loss in (functional.bn_stats_loss(x, y), build_style_loss("bn-stats", y)(x)):
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert torch.isfinite(grad).all() and grad[0, 1].abs().sum() > 0


def test_rbf_rff_is_unbiased_for_the_exact_v_statistic():
    x, y = feats(1, 3, 40, seed=15), feats(1, 3, 30, seed=16, shift=0.6)
    sigma = 1.3
    exact = functional.mmd_rbf_exact(x, y, sigma).item()
    generator = torch.Generator().manual_seed(0)
    estimates = []
    for _ in range(400):
        w, b = functional.random_fourier_frequencies(3, 128, sigma, generator)
        estimates.append(functional.mmd_rbf_rff(x, y, w.double(), b.double()).item())
    mean = sum(estimates) / len(estimates)
    spread = (sum((e - mean) ** 2 for e in estimates) / (len(estimates) - 1)) ** 0.5
    standard_error = spread / len(estimates) ** 0.5
    assert abs(mean - exact) < 4 * standard_error + 1e-4
    assert standard_error < 0.1 * exact  # the test has power: the error bar is small


def test_rbf_linear_time_estimator_is_unbiased_for_the_u_statistic():
    x, y = feats(1, 3, 40, seed=17), feats(1, 3, 60, seed=18, shift=0.6)
    sigma = 1.1
    exact = functional.mmd_rbf_exact(x, y, sigma, unbiased=True).item()
    generator = torch.Generator().manual_seed(0)
    estimates = torch.tensor([functional.mmd_rbf_linear(x, y, sigma, generator).item() for _ in range(3000)])
    standard_error = estimates.std().item() / len(estimates) ** 0.5
    assert abs(estimates.mean().item() - exact) < 4 * standard_error
    assert standard_error < 0.1 * exact


def test_rbf_bandwidth_heuristic_values():
    # i.i.d. N(0, I_C) positions: E‖y_i − y_j‖² = 2C for i ≠ j (and 0 for the 1/M pairs i = j),
    # so 2σ² ≈ 2C(1 − 1/M): σ ≈ √C.
    channels, positions = 16, 400
    y = torch.randn(1, channels, 20, 20, generator=torch.Generator().manual_seed(5), dtype=D)
    sigma = functional.rbf_bandwidth(y, torch.Generator().manual_seed(6))
    assert sigma == pytest.approx(math.sqrt(channels * (1 - 1 / positions)), rel=0.03)
    # σ has the features' scale: scaling them scales σ (same pairs drawn)
    assert functional.rbf_bandwidth(10 * y, torch.Generator().manual_seed(6)) == pytest.approx(10 * sigma, rel=1e-9)


def test_rbf_bandwidth_of_a_flat_style_keeps_the_features_scale():
    """A flat style: every pair is equal, so the heuristic alone gives σ → 0 (the old 1e-12 floor
    gave σ ≈ 7e-7, a Dirac kernel). The floor is relative: 2σ² = 1e-4·‖y_i‖²."""
    y = torch.full((1, 8, 6, 6), 3.0, dtype=D)  # ‖y_i‖² = 8 · 9 = 72
    sigma = functional.rbf_bandwidth(y, torch.Generator().manual_seed(0))
    assert sigma == pytest.approx(math.sqrt(functional.RBF_RELATIVE_FLOOR * 72 / 2), rel=1e-12)
    x = y + 0.01 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=D)
    assert 0 < functional.mmd_rbf_exact(x, y, sigma).item() < 1  # a graded distance, not a 0/1 Dirac


def test_rbf_module_matches_its_formula():
    y = feats(1, 4, 6, 6, seed=19)
    x = feats(1, 4, 5, 5, seed=20, shift=0.2)
    module = build_style_loss("mmd-rbf", y, torch.Generator().manual_seed(3), num_features=64)
    assert module.sigma == pytest.approx(functional.rbf_bandwidth(y, torch.Generator().manual_seed(3)), rel=1e-12)
    expected = functional.mmd_rbf_rff(x, y, module.frequencies, module.phases)
    assert module(x).item() == pytest.approx(expected.item(), rel=1e-12)
    fixed = build_style_loss("mmd-rbf", y, torch.Generator().manual_seed(3), sigma=2.0)
    assert fixed.sigma == 2.0


@pytest.mark.parametrize("name", STYLE_LOSSES.names())
def test_module_and_formula_agree_for_every_loss(name):
    """Every registered loss: the module (cached target statistics) equals its formula written
    out in ``functional`` (``formula_value``), on images of different sizes."""
    x, y = feats(1, 6, 5, 6, seed=21), feats(1, 6, 7, 4, seed=22)
    module = build_style_loss(name, y, torch.Generator().manual_seed(0))
    assert module(x).item() == pytest.approx(module.formula_value(x, y).item(), rel=1e-12)


def test_content_and_tv_by_hand():
    f, p = torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0, 4.0]]]])
    assert functional.content_loss(f, p).item() == pytest.approx(0.5 * (1 + 4))
    image = torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]])
    assert functional.tv_loss(image).item() == pytest.approx((9 + 0) + (1 + 4))
    assert functional.tv_loss(image, power=1).item() == pytest.approx(3 + 0 + 1 + 2)


def test_bad_loss_options_are_usage_errors():
    y = feats(1, 3, 4, 4)
    with pytest.raises(UsageError):
        build_style_loss("mmd-poly", y, degree=0)
    with pytest.raises(UsageError):
        build_style_loss("mmd-rbf", y, estimator="quadratic")
    with pytest.raises(UsageError, match="gram has no option 'c'; its options: none"):
        build_style_loss("gram", y, c=1.0)
    # a misspelt option names the closest one and every valid one (was Python's TypeError text)
    with pytest.raises(UsageError, match=r"no option 'degre' \(did you mean 'degree'\?\); its options: degree, c"):
        build_style_loss("mmd-poly", y, degre=3)
    # a fractional degree was truncated silently (2.5 → 2)
    with pytest.raises(UsageError, match="positive whole number, got 2.5"):
        build_style_loss("mmd-poly", y, degree=2.5)
    assert build_style_loss("mmd-poly", y, degree=3.0).degree == 3
    # a word (--loss-param mmd-poly.degree=two arrives as a string) was a ValueError traceback
    with pytest.raises(UsageError, match="mmd-poly degree must be a positive whole number, got 'two'"):
        build_style_loss("mmd-poly", y, degree="two")


def test_loss_params_are_checked_before_any_work():
    from click.testing import CliRunner

    from styletransfer.cli import main

    def run(*flags):
        return CliRunner().invoke(main, ["stylize", "missing.png", "missing.png", "-o", "out.png", "--weights",
                                         "random", *flags])

    misspelt = run("--loss", "mmd-rbf", "--loss-param", "mmd-rbf.num_feature=8")
    assert misspelt.exit_code == 2 and "did you mean 'num_features'" in misspelt.output
    unused = run("--loss", "gram", "--loss-param", "mmd-poly.c=1")  # silently ignored before
    assert unused.exit_code == 2 and "mmd-poly is not among the losses in use (gram)" in unused.output


def test_linear_time_rbf_reference_is_the_nonnegative_rff_estimate():
    """The unbiased linear-time estimate can be negative (it was used as the normalising
    denominator, floored to 1e-12: a scale of 1e12). The reference is the RFF estimate instead."""
    y = feats(1, 4, 8, 8, seed=31)
    x = y + 0.05 * feats(1, 4, 8, 8, seed=32)  # nearly the style: the linear-time estimate straddles 0
    module = build_style_loss("mmd-rbf", y, torch.Generator().manual_seed(0), estimator="linear")
    draws = torch.stack([module(x) for _ in range(200)])
    assert (draws < 0).any()  # the defect's precondition, seen
    reference = module.denominator(x)
    expected = functional.mmd_rbf_rff(x, y, module.frequencies, module.phases)
    assert reference.item() == pytest.approx(expected.item(), rel=1e-12) and reference.item() > 0
    assert torch.equal(module.denominator(x), reference)  # deterministic
    rff = build_style_loss("mmd-rbf", y, torch.Generator().manual_seed(0))
    assert torch.equal(rff.denominator(x), rff(x))  # the other losses are their own reference


def test_exact_poly_mmd_refuses_what_would_not_fit_in_memory():
    """degree ≠ 2 is O(M²): at relu1_1 of a 512² image (M = 262 144) autograd would keep ~550 GB."""
    from styletransfer.losses.style import EXACT_MMD_MAX_BYTES, exact_mmd_bytes

    big = torch.zeros(1, 2, 256, 256)  # M = 65 536: 3·M² float32 values ≈ 48 GiB even without a gradient
    with pytest.raises(UsageError, match=r"mmd-poly degree 3 uses the exact O\(M²\) estimator: at 65536 positions"):
        build_style_loss("mmd-poly", big, degree=3)
    assert exact_mmd_bytes(4096, 4096, True) < EXACT_MMD_MAX_BYTES  # 64² positions and more stay allowed
    assert build_style_loss("mmd-poly", big, degree=2) is not None  # degree 2 never forms the kernel


# --- every loss against a value computed from its definition alone --------------------------------
# Written with numpy loops from docs/LOSSES.md's definitions (no helper of ``functional``), so
# a mistake shared by a module and its ``formula_value`` still fails here.


def _columns(features: torch.Tensor) -> "np.ndarray":
    """(1, C, H, W) → the M = H·W feature vectors, (M, C), float64."""
    array = features[0].detach().double().numpy()
    return array.reshape(array.shape[0], -1).T


def _gram_by_hand(x, y, **_):
    X, Y = _columns(x), _columns(y)
    c = X.shape[1]
    G = sum(np.outer(v, v) for v in X) / len(X)
    A = sum(np.outer(v, v) for v in Y) / len(Y)
    return ((G - A) ** 2).sum() / (4 * c * c)


def _poly_mmd_by_hand(x, y, *, degree=2, c=0.0, **_):
    X, Y = _columns(x), _columns(y)

    def mean_kernel(P, Q):
        return np.mean([[(p @ q + c) ** degree for q in Q] for p in P])

    return mean_kernel(X, X) + mean_kernel(Y, Y) - 2 * mean_kernel(X, Y)


def _bn_stats_by_hand(x, y, **_):
    X, Y = _columns(x), _columns(y)
    total = 0.0
    for ch in range(X.shape[1]):
        mx, my = X[:, ch].mean(), Y[:, ch].mean()
        sx = np.sqrt(((X[:, ch] - mx) ** 2).mean() + 1e-8)
        sy = np.sqrt(((Y[:, ch] - my) ** 2).mean() + 1e-8)
        total += (mx - my) ** 2 + (sx - sy) ** 2
    return total / X.shape[1]


def _psd_root(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _mean_cov_by_hand(x, y, *, form="bures", **_):
    X, Y = _columns(x), _columns(y)
    c = X.shape[1]
    mx, my = X.mean(0), Y.mean(0)
    Sx = sum(np.outer(v - mx, v - mx) for v in X) / len(X)
    Sy = sum(np.outer(v - my, v - my) for v in Y) / len(Y)
    if form == "coral":
        return ((mx - my) ** 2).sum() / c + ((Sx - Sy) ** 2).sum() / (4 * c * c)
    root = _psd_root(Sy)
    return (((mx - my) ** 2).sum() + np.trace(Sx + Sy - 2 * _psd_root(root @ Sx @ root))) / c


def _rbf_mmd_by_hand(x, y, *, module, **_):
    W, b = module.frequencies.double().numpy(), module.phases.double().numpy()
    features = lambda P: np.mean([np.sqrt(2 / len(b)) * np.cos(W @ p + b) for p in P], axis=0)  # noqa: E731
    return ((features(_columns(x)) - features(_columns(y))) ** 2).sum()


def _sliced_wasserstein_by_hand(x, y, *, module, **_):
    X, Y = _columns(x), _columns(y)
    m, m_y, total = len(X), len(Y), 0.0
    directions = module.last_directions.double().numpy()
    for v in directions:
        px, py = np.sort(X @ v), np.sort(Y @ v)
        # y's empirical quantile function: knots at (j + ½)/M', linear between, constant outside
        levels = (np.arange(m) + 0.5) / m
        total += ((px - np.interp(levels, (np.arange(m_y) + 0.5) / m_y, py)) ** 2).mean()
    return total / len(directions)


def _mrf_by_hand(x, y, *, patch_size=3, **_):
    fx, fy = x[0].detach().double().numpy(), y[0].detach().double().numpy()
    k = min(patch_size, *fx.shape[1:], *fy.shape[1:])

    def patches(f):
        return [f[:, i:i + k, j:j + k].ravel() for i in range(f.shape[1] - k + 1) for j in range(f.shape[2] - k + 1)]

    generated, style = patches(fx), patches(fy)
    total = 0.0
    for p in generated:
        cosines = [p @ s / max(np.linalg.norm(p) * np.linalg.norm(s), 1e-300) for s in style]
        total += ((p - style[int(np.argmax(cosines))]) ** 2).sum()
    return total / (len(generated) * len(generated[0]))


BY_HAND = {"gram": _gram_by_hand, "mmd-linear": lambda x, y, **_: ((_columns(x).mean(0) - _columns(y).mean(0)) ** 2).sum(),
           "mmd-poly": _poly_mmd_by_hand, "mmd-rbf": _rbf_mmd_by_hand, "bn-stats": _bn_stats_by_hand,
           "mean-cov": _mean_cov_by_hand, "sliced-wasserstein": _sliced_wasserstein_by_hand, "mrf": _mrf_by_hand}


@pytest.mark.parametrize("name, options", [(name, {}) for name in STYLE_LOSSES.names()]
                         + [("mmd-poly", {"degree": 3, "c": 0.5}), ("mmd-poly", {"c": 2.0}),
                            ("mean-cov", {"form": "coral"}), ("mrf", {"patch_size": 2})])
def test_every_loss_equals_its_definition_computed_by_hand(name, options):
    """Independent of ``functional``: sizes differ (M = 30, M' = 28), so every normalisation shows."""
    assert set(BY_HAND) == set(STYLE_LOSSES.names())  # a new loss needs its hand-written value here
    x, y = feats(1, 6, 5, 6, seed=21, shift=0.3), feats(1, 6, 7, 4, seed=22)
    module = build_style_loss(name, y, torch.Generator().manual_seed(0), **options)
    value = module(x).item()
    assert value == pytest.approx(BY_HAND[name](x, y, module=module, **options), rel=1e-9)
