"""The optimisation-based stylizer: convergence, determinism, scales, blends and fusion."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from styletransfer.errors import UsageError
from styletransfer.losses import STYLE_LOSSES
from styletransfer.optimize import Objective, StylizeConfig, stylize

ROOT = Path(__file__).resolve().parents[1]

SMALL = dict(scales=(48,), steps=8, style_layers=("relu1_1", "relu2_1", "relu3_1"), content_layers=("relu3_2",))


def images(seed=0):
    g = torch.Generator().manual_seed(seed)
    content = torch.rand(3, 40, 60, generator=g)
    style = (torch.rand(3, 50, 50, generator=g) * torch.tensor([1.0, 0.2, 0.6]).view(3, 1, 1))
    return content, style


@pytest.mark.parametrize("name", STYLE_LOSSES.names())
def test_every_loss_decreases_and_keeps_the_aspect_ratio(encoder, name):
    content, style = images()
    result = stylize(content, style, encoder, StylizeConfig(losses=((name, 1.0),), **SMALL))
    assert result.image.shape == (3, 32, 48)
    assert result.history[-1]["total"] < result.history[0]["total"]
    assert len(result.history) == 8 and 0 <= result.image.min() and result.image.max() <= 1


def test_normalised_losses_start_at_style_weight(encoder):
    """With normalisation each style term equals 1 on the content image, whatever the loss."""
    content, style = images()
    for name in STYLE_LOSSES.names():
        config = StylizeConfig(losses=((name, 1.0),), style_weight=3.0, tv_weight=0.0, **SMALL).validate()
        c, s = content.unsqueeze(0), style.unsqueeze(0)
        objective = Objective(encoder, c, [s], config, torch.Generator().manual_seed(0))
        total, record = objective(c)
        assert record["style"] == pytest.approx(1.0, rel=1e-4)
        assert record["content"] == pytest.approx(0.0, abs=1e-6)
        assert total.item() == pytest.approx(3.0, rel=1e-4)


def test_same_seed_same_output_and_noise_init_differs_by_seed(encoder):
    content, style = images()
    config = StylizeConfig(init="noise", losses=(("mmd-rbf", 1.0),), **SMALL)
    a = stylize(content, style, encoder, config)
    b = stylize(content, style, encoder, config)
    assert torch.equal(a.image, b.image)
    c = stylize(content, style, encoder, StylizeConfig(init="noise", losses=(("mmd-rbf", 1.0),), seed=1, **SMALL))
    assert not torch.equal(a.image, c.image)


def test_coarse_to_fine_starts_each_scale_from_the_last(encoder):
    content, style = images()
    small = {**SMALL, "scales": (32, 64)}
    result = stylize(content, style, encoder, StylizeConfig(**small))
    sizes = [h["size"] for h in result.history]
    assert sizes == [32] * 8 + [64] * 8
    assert result.image.shape == (3, 43, 64)
    first_at_64 = result.history[8]
    # the fine scale starts from the upsampled coarse result, not from the content image
    assert result.history[0]["content"] == pytest.approx(0.0, abs=1e-6)
    assert first_at_64["content"] > 1e-3


def test_fusion_and_blend(encoder):
    content, style = images()
    other = torch.rand(3, 30, 30, generator=torch.Generator().manual_seed(5))
    config = StylizeConfig(losses=(("gram", 0.5), ("bn-stats", 0.5)), style_blend=(0.7, 0.3), **SMALL)
    result = stylize(content, [style, other], encoder, config)
    first = result.history[0]
    assert {"style/gram", "style/bn-stats"} <= set(first)
    # both fused losses carry weight (Neural-Style-MMD only weighted the first one)
    assert first["style/gram"] == pytest.approx(0.5, rel=1e-3) and first["style/bn-stats"] == pytest.approx(0.5, rel=1e-3)
    with pytest.raises(UsageError, match="3 styles|2 styles"):
        stylize(content, [style, other], encoder, StylizeConfig(style_blend=(1.0, 1.0, 1.0), **SMALL))


def test_raw_formulas_without_normalisation(encoder):
    content, style = images()
    config = StylizeConfig(normalize=False, tv_weight=0.0, content_weight=0.0, style_weight=1.0,
                           layer_weights=(1.0, 0.0, 0.0), **{k: v for k, v in SMALL.items()}).validate()
    c, s = content.unsqueeze(0), style.unsqueeze(0)
    from styletransfer.imageio import resize_edge
    from styletransfer.losses import functional

    c48, s48 = resize_edge(c, 48), resize_edge(s, 48)
    objective = Objective(encoder, c48, [s48], config)
    _, record = objective(c48)
    expected = functional.gram_loss(encoder(c48, ["relu1_1"])["relu1_1"], encoder(s48, ["relu1_1"])["relu1_1"])
    assert record["style"] == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(scales=(8,)), dict(losses=(("nope", 1.0),)),
                                 dict(style_layers=("relu9_1",)), dict(optimizer="sgd"), dict(style_weight=-1)])
def test_bad_settings_are_usage_errors(bad):
    with pytest.raises(UsageError):
        StylizeConfig(**bad).validate()


def test_a_non_finite_objective_stops_with_the_last_finite_image(tmp_path, image_pair, encoder, monkeypatch):
    """The objective turns NaN at the 4th evaluation: one-line error, exit 1, and the output holds
    the last iterate whose objective and gradient were finite (not NaN pixels)."""
    from click.testing import CliRunner

    from styletransfer import optimize as O
    from styletransfer.cli import main

    calls, seen = {"n": 0}, []
    forward = O.Objective.forward

    def failing(self, image):
        calls["n"] += 1
        seen.append(image.detach().clone())
        total, record = forward(self, image)
        return (total * float("nan"), record) if calls["n"] >= 4 else (total, record)

    monkeypatch.setattr(O.Objective, "forward", failing)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["stylize", str(image_pair[0]), str(image_pair[1]), "-o", str(out),
                                       "--weights", "random", "--size", "32", "--steps", "10", "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "objective became NaN or infinite at evaluation 3" in result.output
    assert "last finite image was written" in result.output
    from styletransfer.imageio import load_image, read_metadata

    assert torch.isfinite(load_image(out)).all() and "stopped" in read_metadata(out)
    calls["n"], seen[:] = 0, []
    with pytest.raises(O.NonFiniteError) as caught:
        O.stylize(torch.rand(3, 32, 32), torch.rand(3, 32, 32), encoder, StylizeConfig(scales=(32,), steps=10))
    assert caught.value.image.shape == (3, 32, 32) and torch.isfinite(caught.value.image).all()
    assert len(seen) == 4 and not torch.equal(seen[2], seen[1])  # the 4th evaluation turned NaN
    assert torch.equal(caught.value.image, seen[2][0].clamp(0, 1))  # the last finite iterate, exactly


def test_library_stylize_takes_a_mask_and_colour_preservation(encoder):
    """Both used to live only in the file-level api; stylize() callers have them now."""
    from styletransfer import color

    g = torch.Generator().manual_seed(3)
    content, first, second = (torch.rand(3, 32, 48, generator=g) for _ in range(3))
    # 5 evaluations: the line search spends its first ones finding a step length
    config = StylizeConfig(scales=(48,), steps=5, style_layers=("relu1_1", "relu2_1"), content_layers=("relu2_1",))
    mask = torch.zeros(1, 32, 48)
    mask[..., :24] = 1.0  # left half: the first style
    both = stylize(content, [first, second], encoder, config, mask=mask).image
    alone = [stylize(content, [style], encoder, config).image for style in (first, second)]
    assert torch.allclose(both[..., :24], alone[0][..., :24]) and torch.allclose(both[..., 24:], alone[1][..., 24:])
    with pytest.raises(UsageError, match="exactly two styles"):
        stylize(content, [first], encoder, config, mask=mask)

    kept = stylize(content, [first], encoder, config, preserve_color="luminance").image
    chroma = lambda image: color.rgb_to_yiq(image)[1:]  # noqa: E731  (I and Q: the colour, not the brightness)
    assert torch.allclose(chroma(kept), chroma(content), atol=2e-2)  # up to clamping to [0, 1]
    assert not torch.allclose(chroma(alone[0]), chroma(content), atol=2e-2)


@pytest.mark.parametrize("name", ["lbfgs", "lbfgs-wolfe", "adam"])
def test_every_registered_optimizer_lowers_the_objective(encoder, name):
    from styletransfer.optimize import OPTIMIZERS

    assert name in OPTIMIZERS.names() and StylizeConfig(optimizer=name).learning_rate == OPTIMIZERS.get(name).default_lr
    g = torch.Generator().manual_seed(4)
    content, style = torch.rand(3, 32, 32, generator=g), torch.rand(3, 32, 32, generator=g)
    config = StylizeConfig(optimizer=name, scales=(32,), steps=12, style_layers=("relu1_1", "relu2_1"),
                           content_layers=("relu2_1",))
    history = stylize(content, style, encoder, config).history
    assert len(history) == 12  # the budget is evaluations, line-search trials included
    assert history[-1]["total"] < 0.8 * history[0]["total"]
    assert sorted(OPTIMIZERS.names()) == ["adam", "lbfgs", "lbfgs-wolfe"]  # a new one joins the parametrisation
    with pytest.raises(UsageError, match="did you mean 'adam'"):
        StylizeConfig(optimizer="adan").validate()


def _rocket_swirl_bn_stats(optimizer: str, monkeypatch=None):
    """The pair on which L-BFGS without a line search diverged (bn-stats, magenta encoder, 128 px)
    when its first step was torch's (1 in L1 norm over all pixels); given ``monkeypatch``, that
    first step is restored (FIRST_STEP_MEAN = 1 / pixels)."""
    import warnings

    from styletransfer import optimize
    from styletransfer.imageio import load_image, resize_edge
    from styletransfer.weights import load_encoder

    encoder = load_encoder("magenta")
    content, style = load_image(ROOT / "assets/content/rocket.jpg"), load_image(ROOT / "assets/style/swirl.jpg")
    if monkeypatch is not None:
        monkeypatch.setattr(optimize, "FIRST_STEP_MEAN", 1.0 / resize_edge(content, 128).numel())
    config = StylizeConfig(losses=(("bn-stats", 1.0),), scales=(128,), steps=80, optimizer=optimizer,
                           precision="fp32").validate()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = stylize(content, style, encoder, config)
    working = resize_edge(content, 128).unsqueeze(0)
    objective = Objective(encoder, working, [resize_edge(style, 128).unsqueeze(0)], config.for_encoder(encoder),
                          torch.Generator().manual_seed(config.seed))
    with torch.no_grad():
        final, _ = objective(result.image.unsqueeze(0))
    return [record["total"] for record in result.history], float(final), caught


def test_a_diverging_lbfgs_run_ends_on_its_best_iterate_and_says_so(monkeypatch):
    """L-BFGS without a line search, from torch's tiny first step, diverges on this pair; the
    output is the best iterate it evaluated, with a warning."""
    totals, final, caught = _rocket_swirl_bn_stats("lbfgs", monkeypatch)
    assert totals[-1] > 2 * min(totals)  # it did diverge
    assert any("diverged" in str(w.message) and "best iterate" in str(w.message) for w in caught)
    assert final <= min(totals) * 1.01  # the best iterate, not the diverged one


def test_the_default_line_search_and_the_sized_first_step_do_not_diverge_where_torchs_step_did(monkeypatch):
    """On the same pair and budget, the strong Wolfe line search ("auto" picks it for a
    deterministic objective) and plain L-BFGS with the sized first step both end 30× below the
    start, with no warning; plain L-BFGS from torch's first step does not get below half of it."""
    from styletransfer.optimize import DEFAULT_OPTIMIZER

    assert StylizeConfig().optimizer == DEFAULT_OPTIMIZER == "auto"
    for optimizer in (DEFAULT_OPTIMIZER, "lbfgs"):
        totals, final, caught = _rocket_swirl_bn_stats(optimizer)
        assert len(totals) == 80
        assert final < totals[0] / 30 and final <= min(totals) * 1.001, optimizer  # the objective of the output
        assert not any("diverged" in str(w.message) for w in caught)
    torch_first_step, _, _ = _rocket_swirl_bn_stats("lbfgs", monkeypatch)
    assert min(torch_first_step) > 10 * final


def test_a_line_search_cut_by_the_budget_ends_on_the_best_evaluated_iterate():
    """The budget can end a line search on an unevaluated trial point; the run ends on the
    iterate of the lowest objective it evaluated instead. Rosenbrock's valley makes the search
    extrapolate and zoom (without the rule, 32 of these budgets ended elsewhere)."""
    from styletransfer.optimize import _optimise

    for scale, steps in [(1, 6), (10, 5), (100, 4), (1000, 4), (1000, 8), (100, 20)]:
        seen = []

        def objective(x):
            v = x.flatten()
            total = scale * ((v[1:] - v[:-1] ** 2) ** 2).sum() + ((1 - v[:-1]) ** 2).sum()
            seen.append((float(total.detach()), x.detach().clone()))
            return total, {"total": float(total.detach()), "content": 0.0, "style": 0.0}

        x = torch.zeros(1, 3, 2, 2, requires_grad=True)
        _optimise(x, objective, StylizeConfig(optimizer="lbfgs-wolfe"), steps, 0, 2, [], 0.0, None, None)
        assert len(seen) == steps
        assert torch.equal(x.detach(), min(seen, key=lambda item: item[0])[1]), (scale, steps)


@pytest.mark.parametrize("loss, options, expected", [
    ("gram", {}, "lbfgs-wolfe"), ("mmd-rbf", {}, "lbfgs-wolfe"),  # random features drawn once: deterministic
    ("sliced-wasserstein", {}, "lbfgs"), ("mmd-rbf", {"estimator": "linear"}, "lbfgs"),  # redrawn every call
])
def test_auto_picks_the_line_search_only_for_objectives_that_do_not_redraw(encoder, loss, options, expected):
    import warnings

    content, style = images()
    config = StylizeConfig(losses=((loss, 1.0),), loss_options={loss: options} if options else {}, **SMALL)
    result = stylize(content, style, encoder, config)
    assert result.config.optimizer == expected and len(result.history) == SMALL["steps"]
    first = Objective(encoder, content.unsqueeze(0), [style.unsqueeze(0)], config.validate(),
                              torch.Generator().manual_seed(0))
    with torch.no_grad():  # the claim "auto" rests on: a redrawing objective differs between two calls
        values = [float(first(content.unsqueeze(0))[0]) for _ in range(3)]
    assert (len(set(values)) > 1) == (expected == "lbfgs") == first.redraws
    if expected == "lbfgs":  # the line search by name is kept, with a warning naming the remedy
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            named = stylize(content, style, encoder, replace(config, optimizer="lbfgs-wolfe"))
        assert named.config.optimizer == "lbfgs-wolfe"
        assert any("redraws" in str(w.message) and "--optimizer lbfgs" in str(w.message) for w in caught)


def test_the_first_lbfgs_step_moves_the_pixels_by_one_level_on_average():
    """torch's L-BFGS caps its first step at 1 in L1 norm over all pixels (~1e-5 of a level each at
    256 px); ours is sized to FIRST_STEP_MEAN·lr on average, whatever the objective's scale."""
    from styletransfer.optimize import FIRST_STEP_MEAN, _lbfgs

    for scale, lr in [(1.0, 1.0), (1e6, 1.0), (1e6, 0.5)]:
        target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        x = torch.zeros_like(target, requires_grad=True)

        def step():
            total = scale * ((x - target) ** 2).sum()
            total.backward()
            return total

        _lbfgs(x, step, steps=1, lr=lr)
        moved = x.detach().abs().mean()
        assert float(moved) == pytest.approx(lr * FIRST_STEP_MEAN, rel=1e-5), (scale, lr)


def test_the_objective_is_that_of_the_saved_image(encoder):
    """Pixels are optimised freely but the objective sees them clamped to [0, 1], as the file will:
    an out-of-range image scores as its clamp, and pixels past a bound get no gradient outward."""
    content, style = images()
    objective = Objective(encoder, content.unsqueeze(0), [style.unsqueeze(0)],
                          StylizeConfig(precision="fp32").for_encoder(encoder), torch.Generator().manual_seed(0))
    wild = (content.unsqueeze(0) * 3 - 1).requires_grad_(True)  # (1, 3, H, W), much of it outside [0, 1]
    total, _ = objective(wild)
    total.backward()
    with torch.no_grad():
        clamped, _ = objective(wild.detach().clamp(0, 1))
    assert float(total.detach()) == float(clamped)
    outside = (wild.detach() < 0) | (wild.detach() > 1)
    assert outside.any() and bool((wild.grad[outside] == 0).all())


def test_precision_auto_is_bf16_only_where_the_device_has_it(encoder, monkeypatch):
    from styletransfer import precision as P

    assert StylizeConfig().precision == P.AUTO
    content, style = images()
    for native, expected in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(P, "native_bf16", lambda device, native=native: native)
        assert P.resolve_precision("auto", "cpu") == expected
        result = stylize(content, style, encoder, StylizeConfig(**{**SMALL, "steps": 2}))
        assert result.config.precision == expected  # what ran, as reports record it
    assert P.resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(UsageError, match="did you mean 'bf16'"):
        P.validate_precision("bf61")


def test_an_objective_that_redraws_keeps_its_last_iterate_not_its_luckiest_draw():
    """With randomness redrawn at every evaluation the lowest value is the luckiest draw, not the
    best image: such a run keeps its last iterate (issue 24); a deterministic one its best."""
    from styletransfer.optimize import _optimise

    for redraws in (True, False):
        generator = torch.Generator().manual_seed(0)
        seen = []

        class Noisy:
            def __init__(self):
                self.redraws = redraws

            def __call__(self, x):
                noise = float(torch.rand((), generator=generator)) * (30.0 if redraws else 0.0)
                total = (x**2).sum() + noise
                seen.append((float(total.detach()), x.detach().clone()))
                return total, {"total": float(total.detach()), "content": 0.0, "style": 0.0}

        x = torch.full((1, 3, 2, 2), 3.0, requires_grad=True)
        optimizer = "lbfgs" if redraws else "lbfgs-wolfe"  # what "auto" picks for each
        _optimise(x, Noisy(), StylizeConfig(optimizer=optimizer), 8, 0, 2, [], 0.0, None, None)
        luckiest = min(seen, key=lambda item: item[0])[1]
        if redraws:
            assert min(range(len(seen)), key=lambda i: seen[i][0]) < len(seen) - 1  # the luck was not last
            assert not torch.equal(x.detach(), luckiest)  # the last iterate, not the luckiest draw's
        else:
            assert torch.equal(x.detach(), luckiest)


def test_the_reported_final_loss_is_that_of_the_returned_iterate(encoder):
    content, style = images()
    for loss, redraws in (("sliced-wasserstein", True), ("gram", False)):
        result = stylize(content, style, encoder, StylizeConfig(losses=((loss, 1.0),), **SMALL))
        totals = [record["total"] for record in result.history]
        assert result.redraws is redraws
        assert result.final_loss == (totals[-1] if redraws else min(totals))


@pytest.mark.parametrize("weights, layer, expected", [("random:0", "relu1_1", "relu4_1,relu5_1"),
                                                      ("magenta", "block1_expand", "block6_expand,block13_expand")])
def test_the_mrf_refusal_names_the_layers_of_the_encoder_in_use(weights, layer, expected, monkeypatch):
    """Too many patch pairs: the remedy names deeper layers of THIS encoder (issue 24: it named
    VGG19's under --weights magenta)."""
    import warnings

    from styletransfer.losses import style as S
    from styletransfer.weights import load_encoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = load_encoder(weights)
    monkeypatch.setattr(S, "MRF_MAX_PAIRS", 10)
    content, style = images()
    config = StylizeConfig(losses=(("mrf", 1.0),), scales=(48,), steps=2, style_layers=(layer,), precision="fp32")
    with pytest.raises(UsageError) as info:
        stylize(content, style, encoder, config)
    message = str(info.value)
    assert f"at {layer}" in message and f"e.g. {expected}" in message and "\n" not in message
    if weights == "magenta":
        assert "relu" not in message
