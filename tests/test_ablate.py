"""`styletransfer ablate`: batch-dependence metric, adaBN re-estimation, report builders, the
transformer network, synthetic data, and one tiny CLI run per subcommand."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from styletransfer.ablate import adabn as A
from styletransfer.ablate import norm as N
from styletransfer.ablate import report as R
from styletransfer.ablate import shapes as SH
from styletransfer.ablate import stats as S
from styletransfer.ablate.data import ContentImages, generated_image
from styletransfer.ablate.metrics import batch_dependence, gain_verdict
from styletransfer.ablate.perceptual import PerceptualLoss
from styletransfer.ablate.plot import PALETTE, line_plot
from styletransfer.ablate.shapes import SHAPES, SHIFTS, make_domain, shape_masks
from styletransfer.ablate.transform_net import build_transformer, load_transformer, save_transformer
from styletransfer.adain import ADAIN_LAYER, Decoder, mean_std
from styletransfer.cli import main
from styletransfer.errors import UsageError, WeightsError
from styletransfer.markdown import markdown_table
from styletransfer.norms import NORMS

TINY = dict(width=4, residual_blocks=1)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def _magenta_torch_home(tmp_path_factory):
    return tmp_path_factory.mktemp("magenta_torch_home")


@pytest.fixture
def magenta(_magenta_torch_home, monkeypatch):
    """One torch hub folder for this module's tests that run Magenta (the style shift): its
    networks are converted from the installed ONNX files once (about 4 s), not in every test."""
    monkeypatch.setenv("TORCH_HOME", str(_magenta_torch_home))


def pool_of(count: int, *shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, *shape, generator=torch.Generator().manual_seed(seed))


# --- the batch-dependence metric ---------------------------------------------------------


def test_metric_is_zero_for_per_item_functions_and_exact_for_a_known_coupling():
    pool = pool_of(6, 3, 4, 4)
    independent = batch_dependence(lambda b: 2 * b + 1, pool, batch_size=3, compositions=4,
                                   generator=torch.Generator().manual_seed(0))
    assert independent.max_abs == 0 and independent.max_rel_l2 == 0
    assert independent.targets == 6 and independent.compositions == 4 and independent.batch_size == 3
    # Adding the batch sum couples the items. With two possible partners (values 1 and 3) both
    # compositions are used, so the target's output changes by exactly |3 − 1|.
    scalars = torch.tensor([0.0, 1.0, 3.0]).view(3, 1)
    coupled = batch_dependence(lambda b: b + b.sum(0, keepdim=True), scalars, batch_size=2, compositions=2,
                               targets=1, generator=torch.Generator().manual_seed(3))
    assert coupled.max_abs == 2.0 and coupled.mean_rel_l2 in (2.0, 2.0 / 3.0)


def test_metric_rejects_pools_too_small_for_the_batch():
    with pytest.raises(ValueError):
        batch_dependence(lambda b: b, pool_of(2, 2), batch_size=3)
    with pytest.raises(ValueError):  # only two different partner sets exist around one item
        batch_dependence(lambda b: b, pool_of(3, 2), batch_size=2, compositions=3)


def test_batch_statistics_pool_the_batch_like_a_hand_computation():
    features = pool_of(3, 5, 4, 2)
    mean, std = S.batch_mean_std(features)
    flat = features.permute(1, 0, 2, 3).reshape(5, -1)  # (C, N*H*W)
    assert torch.allclose(mean.view(5), flat.mean(1))
    assert torch.allclose(std.view(5), (flat.var(1, unbiased=True) + 1e-5).sqrt())


@pytest.mark.parametrize("statistics", list(S.STATISTICS))
def test_adain_instance_statistics_are_batch_independent_batch_statistics_are_not(statistics):
    features = pool_of(8, 16, 4, 4) * 3
    style_mean, style_std = mean_std(pool_of(1, 16, 4, 4, seed=1))
    op = S.STATISTICS[statistics]
    measured = batch_dependence(lambda b: op(b, style_mean, style_std), features, batch_size=4,
                                compositions=3, generator=torch.Generator().manual_seed(0))
    if statistics == "instance":
        assert measured.max_abs <= S.INDEPENDENT_TOLERANCE
    else:
        assert measured.mean_rel_l2 > S.DEPENDENT_MINIMUM and measured.max_abs > 1e-2


def test_adain_through_encoder_and_decoder(encoder):
    images = pool_of(5, 3, 32, 32)
    style_mean, style_std = mean_std(encoder(pool_of(1, 3, 32, 32, seed=9), [ADAIN_LAYER])[ADAIN_LAYER])
    torch.manual_seed(0)
    decoder = Decoder().eval()
    results = {}
    for statistics, op in S.STATISTICS.items():
        fn = lambda b, op=op: decoder(op(encoder(b, [ADAIN_LAYER])[ADAIN_LAYER], style_mean, style_std))  # noqa: E731
        results[statistics] = batch_dependence(fn, images, batch_size=3, compositions=2, targets=2,
                                               generator=torch.Generator().manual_seed(0))
    assert results["instance"].max_abs <= 1e-5
    assert results["batch"].max_abs > 100 * max(results["instance"].max_abs, 1e-7)


def test_bn_network_depends_on_the_batch_only_in_train_mode():
    images = pool_of(7, 3, 16, 16)
    torch.manual_seed(0)
    net = build_transformer("batch", **TINY)
    A.reestimate_bn(net, images.split(2))
    measure = {training: batch_dependence(S._in_mode(net, training), images, batch_size=3, compositions=3,
                                          targets=3, generator=torch.Generator().manual_seed(1))
               for training in (False, True)}
    assert measure[False].max_abs <= 1e-5
    assert measure[True].mean_rel_l2 > S.DEPENDENT_MINIMUM
    torch.manual_seed(0)
    instance = build_transformer("instance", **TINY)
    assert batch_dependence(S._in_mode(instance, True), images, batch_size=3, compositions=2, targets=2).max_abs <= 1e-5


def test_expectations():
    assert S.expectation("batch", True) == "dependent" and S.expectation("batch", None) == "dependent"
    assert S.expectation("batch", False) == "independent" and S.expectation("instance", True) == "independent"
    assert S.meets_expectation("independent", {"max_abs": 0.0, "mean_rel_l2": 0.0})
    assert not S.meets_expectation("dependent", {"max_abs": 0.0, "mean_rel_l2": 0.0})


# --- adaBN ---------------------------------------------------------------------------------


def test_reestimate_bn_changes_only_bn_buffers_and_recomputes_target_statistics():
    torch.manual_seed(0)
    model = A.ShapeClassifier(4, width=4)
    model.train()
    for _ in range(3):  # give the running statistics some source history
        model(make_domain(16, torch.Generator().manual_seed(_), classes=4)[0])
    parameters = {k: v.clone() for k, v in model.named_parameters()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    target, _ = make_domain(24, torch.Generator().manual_seed(5), shift="contrast", classes=4)
    batches = list(target.split(8))
    assert A.reestimate_bn(model, batches) == 24
    for name, value in model.named_parameters():
        assert torch.equal(value, parameters[name]), name
    layers = A.batchnorm_layers(model)
    assert all(layer.momentum == 0.1 for layer in layers) and not model.training
    assert all(int(layer.num_batches_tracked) == 3 for layer in layers)
    for name, value in model.named_buffers():
        if name.endswith("running_mean"):
            assert not torch.equal(value, buffers[name]), name
    # The first BN's input does not depend on any BN: its running mean is the target-set mean.
    first_conv, first_bn = model.features[0][1], model.features[0][2]
    with torch.no_grad():
        inputs = first_conv(model.features[0][0](target))  # (N, C, H, W)
    assert torch.allclose(first_bn.running_mean, inputs.mean(dim=(0, 2, 3)), atol=1e-6)
    pooled = inputs.transpose(0, 1).flatten(1).var(dim=1, unbiased=True)  # over every target position at once
    assert torch.allclose(first_bn.running_var, pooled, rtol=1e-5)
    per_batch_var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in inputs.split(8)]).mean(0)
    assert not torch.allclose(first_bn.running_var, per_batch_var, rtol=1e-3)  # the old, biased-low estimate
    # Every later BN sees its inputs computed with the re-estimated statistics upstream: one batch of all
    # the target images through the adapted network in eval mode gives the same statistics.
    seen = {}
    hooks = [layer.register_forward_pre_hook(lambda m, i, key=k: seen.__setitem__(key, i[0]))
             for k, layer in enumerate(layers)]
    with torch.no_grad():
        model(target)
    for hook in hooks:
        hook.remove()
    for k, layer in enumerate(layers):
        x = seen[k].transpose(0, 1).flatten(1)
        assert torch.allclose(layer.running_mean, x.mean(dim=1), atol=1e-5)
        assert torch.allclose(layer.running_var, x.var(dim=1, unbiased=True), rtol=1e-4, atol=1e-6)


def test_batch_statistics_control_normalises_each_batch_by_itself_and_leaves_the_model_alone():
    """Train-mode BN on one batch of all the test images gives the predictions of the net
    re-estimated on exactly those images, up to the biased/unbiased variance factor (n/(n−1),
    n = images × positions, too small to move an argmax here)."""
    torch.manual_seed(0)
    model = A.ShapeClassifier(4, width=4).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = make_domain(32, torch.Generator().manual_seed(3), shift="invert", classes=4)
    batch_stats = A.evaluate_batch_statistics(model, images, labels, 32, torch.device("cpu"))
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert not model.training
    adapted = A._adapted(model, images, A.AdaBNConfig(adapt_batch=32), torch.device("cpu"))
    assert batch_stats == A.evaluate(adapted, images, labels, torch.device("cpu"))
    for layer in A.batchnorm_layers(model):  # running statistics play no part in batch statistics
        layer.running_mean.fill_(100.0)
    assert A.evaluate_batch_statistics(model, images, labels, 32, torch.device("cpu")) == batch_stats
    assert A.evaluate(model, images, labels, torch.device("cpu")) != batch_stats


def test_reestimate_bn_needs_bn_layers():
    with pytest.raises(UsageError):
        A.reestimate_bn(nn.Sequential(nn.Conv2d(3, 3, 1)), [torch.rand(2, 3, 4, 4)])


def test_gain_verdict():
    assert gain_verdict([0.05, 0.02, 0.03]) == "helps"
    assert gain_verdict([0.05, -0.01, 0.03]) == "no clear effect"
    assert gain_verdict([0.002, 0.004, 0.001]) == "no clear effect"  # all positive but tiny
    assert gain_verdict([-0.05, -0.02, -0.03]) == "hurts"


@pytest.mark.usefixtures("magenta")
def test_shapes_are_distinct_and_shifts_stay_in_range():
    labels = torch.arange(len(SHAPES))
    masks = shape_masks(labels, torch.Generator().manual_seed(0))
    assert masks.shape == (len(SHAPES), 1, 32, 32)
    areas = masks.flatten(1).sum(1)
    assert (areas > 20).all()  # every shape is visible
    assert len({tuple(m.flatten().tolist()) for m in masks}) == len(SHAPES)
    source, source_labels = make_domain(16, torch.Generator().manual_seed(1))
    for shift in SHIFTS.names():
        images, labels_shifted = make_domain(16, torch.Generator().manual_seed(1), shift=shift)
        assert torch.equal(labels_shifted, source_labels)
        assert 0 <= images.min() and images.max() <= 1
        assert (images - source).abs().mean() > 0.02, shift


def _quantised(images: torch.Tensor) -> torch.Tensor:
    """What an 8-bit PNG round trip (``save_image`` then ``load_image``) leaves of ``images``."""
    return (images.clamp(0, 1) * 255 + 0.5).floor() / 255


@pytest.mark.usefixtures("magenta")
def test_style_shift_is_a_deterministic_stylisation_of_the_source_scenes():
    source, labels = make_domain(6, torch.Generator().manual_seed(1))
    shifted, shifted_labels = make_domain(6, torch.Generator().manual_seed(1), shift="style")
    assert shifted.shape == source.shape == (6, 3, SH.IMAGE_SIZE, SH.IMAGE_SIZE)
    assert torch.equal(shifted_labels, labels)
    assert 0 <= shifted.min() and shifted.max() <= 1
    assert torch.equal(make_domain(6, torch.Generator().manual_seed(1), shift="style")[0], shifted)
    assert ((shifted - source).abs().mean(dim=(1, 2, 3)) > 0.05).all()  # every scene restyled, not nudged
    # and not by a per-channel affine map (what BN could undo exactly): fit one per image and channel
    x, y = source.flatten(2), shifted.flatten(2)  # (N, 3, H·W)
    gain = ((x - x.mean(2, keepdim=True)) * (y - y.mean(2, keepdim=True))).mean(2, keepdim=True) / x.var(
        2, unbiased=False, keepdim=True)
    residual = y - y.mean(2, keepdim=True) - gain * (x - x.mean(2, keepdim=True))
    assert (residual.std(2) > 0.05).all()


@pytest.mark.usefixtures("magenta")
def test_style_shift_is_stylize_dataset_with_magenta_and_a_seeded_painting_per_scene():
    """Each output is Magenta's stylisation of its scene with the painting ``stylize-dataset``
    chooses from the seed and the scene's file name, and with no other painting."""
    from styletransfer.dataset.plan import choose_styles, relative_images
    from styletransfer.imageio import load_image, resize_to
    from styletransfer.magenta.stylizer import MagentaConfig, load_stylizer

    scenes, _ = make_domain(6, torch.Generator().manual_seed(2))
    paintings = relative_images(SH.STYLE_ROOT, "STYLE_ROOT")
    assert paintings == sorted(p.name for p in SH.STYLE_ROOT.iterdir()) and len(paintings) >= 3
    stylizer = load_stylizer(MagentaConfig(content_size=SH.STYLE_SIZE))
    embeddings = [stylizer.style_embedding(load_image(SH.STYLE_ROOT / name)) for name in paintings]
    contents = resize_to(_quantised(scenes), SH.STYLE_SIZE, SH.STYLE_SIZE)  # (6, 3, S, S)
    every = stylizer.stylize_batch(contents, [embeddings] * 6)  # (6, 3 paintings, 3, S, S)
    reference = resize_to(_quantised(every.flatten(0, 1)), 32, 32).view(6, len(paintings), 3, 32, 32)
    choices = {}
    for generator_seed in (3, 4):
        seed = SH.style_seed(torch.Generator().manual_seed(generator_seed))
        shifted = SHIFTS.get("style")(scenes, None, torch.Generator().manual_seed(generator_seed))
        chosen = [choose_styles(SH.scene_name(i, 6), seed, paintings, 1)[0] for i in range(6)]
        distance = (reference - shifted[:, None]).abs().amax(dim=(2, 3, 4))  # (6, paintings)
        assert distance[range(6), chosen].max() < 3 / 255, distance
        assert distance.argmin(dim=1).tolist() == chosen
        assert (distance.sort(dim=1).values[:, 1] > 0.1).all()  # every other painting is far off
        choices[generator_seed] = chosen
    assert choices[3] != choices[4] and len(set(choices[3] + choices[4])) >= 3
    assert SH.scene_name(5, 6) == "000005.png" and SH.scene_name(5, 10**7) == "0000005.png"


# --- report builders -----------------------------------------------------------------------


def test_mean_std_and_formatting():
    mean, std = R.mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))
    assert R.mean_std([7.0]) == (7.0, 0.0)
    summary = R.summarize([0.5, 0.7])
    assert summary["n"] == 2 and summary["mean"] == pytest.approx(0.6) and summary["std"] == pytest.approx(0.1414, abs=1e-4)
    assert R.fmt_mean_std(summary, digits=3, scale=100) == "60 ± 14.1"
    assert R.fmt_mean_std(R.summarize([0.25]), scale=100) == "25"
    assert R.fmt_mean_std(summary, scale=100, decimals=1) == "60.0 ± 14.1"
    table = markdown_table(("a", "b"), [(1, "x|y")])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |"]


def _env():
    return {"device": "cpu", "threads": 2, "torch": "x", "python": "3", "platform": "p"}


def _arm(norm, seed, final, parameters=10):
    curve = [{"iteration": 0, "content": 1.0, "style": 1.0, "total": 6.0},
             {"iteration": 5, "content": 0.5, "style": 0.5, "total": 2 * final},
             {"iteration": 10, "content": 0.4, "style": 0.3, "total": final}]
    return {"norm": norm, "seed": seed, "lr": 1e-3, "curve": curve, "train_curve": [3.0, 2.0, 1.0, 1.0],
            "final": curve[-1], "final_train_mode": {"content": 0.4, "style": 0.3, "total": final},
            "final_reestimated": {"content": 0.4, "style": 0.2, "total": final / 2} if norm == "batch" else None,
            "train_images_per_s": 10.0 + seed,
            "inference_images_per_s": 100.0, "output_std": 0.1, "parameters": parameters}


def test_norm_report_lists_every_arm_with_mean_and_std():
    norms, seeds = ("batch", "instance"), (0, 1)
    arms = [_arm(n, s, final=1.0 + i + s) for i, n in enumerate(norms) for s in seeds]
    summary = N.summarize_arms(arms, norms)
    assert summary["instance"]["final_total"]["mean"] == pytest.approx(2.5)
    assert summary["instance"]["final_total"]["std"] == pytest.approx(math.sqrt(0.5))
    assert summary["batch"]["curve_avg_total"]["mean"] == pytest.approx(((2.0 + 1.0) / 2 + (4.0 + 2.0) / 2) / 2)
    assert N.mean_curves(arms, norms)["batch"] == [(0, 6.0), (5, 3.0), (10, 1.5)]
    assert N.mean_train_curves(arms, norms, window=2)["batch"] == [(2, 2.5), (4, 1.0)]
    config = {**N.asdict(N.QUICK), "norms": norms, "seeds": seeds,  # run() stores the encoder's layers
              "content_layer": "relu2_2", "style_layers": ("relu1_1", "relu2_1")}
    sweep = {"batch": {"lr": 3e-3, "scores": {"0.0003": 2.0, "0.001": 1.5, "0.003": 1.25}},
             "instance": {"lr": 1e-3, "scores": {"0.0003": 2.0, "0.001": 1.0, "0.003": math.inf}}}
    results = {"command": "styletransfer ablate norm -o x", "config": config, "environment": _env(), "seconds": 1.0,
               "weights": {"source": "random:0"}, "data": {"train_photos": ["a.jpg"], "heldout_photos": ["b.jpg"]},
               "sweep": sweep, "arms": arms, "summary": summary}
    assert summary["batch"]["final_total_reestimated"]["mean"] == pytest.approx(0.75)
    assert summary["instance"]["final_total_reestimated"] is None
    text = N.build_markdown(results)
    assert "styletransfer ablate norm -o x" in text and "random weights" in text
    assert "| batch | 2 | 1.5 | 1.25 | 0.003 |" in text and "| instance | 2 | 1 | inf | 0.001 |" in text  # the sweep
    rows = [line for line in text.splitlines() if line.startswith("| batch | 0.003 |")
            or line.startswith("| instance | 0.001 |")]
    assert len(rows) == 2 and "1.5 ± 0.7071" in rows[0] and "2.5 ± 0.7071" in rows[1]
    assert "0.75 ± 0.3536" in rows[0] and "| — |" in rows[1]  # BN re-estimated; instance has none
    assert "Lowest final held-out total: **batch**" in text


def test_adabn_report_lists_every_seed_and_shift_with_controls_and_paired_tests():
    shifts = ("noise", "invert")
    runs = [{"seed": s, "source_accuracy": 0.9 + 0.02 * s, "shifts": {
        "noise": {"target_before": 0.3, "target_after": 0.5 + 0.1 * s, "gain": 0.2 + 0.1 * s, "source_after": 0.8,
                  "target_source_reestimated": 0.3 + 0.01 * s, "target_batch_stats": 0.55 + 0.1 * s},
        "invert": {"target_before": 0.2, "target_after": 0.2, "gain": 0.0, "source_after": 0.7,
                   "target_source_reestimated": 0.2, "target_batch_stats": 0.2}}} for s in (0, 1, 2)]
    summary = A.summarize_runs(runs, shifts)
    assert summary["source_accuracy"]["mean"] == pytest.approx(0.92) and summary["source_accuracy"]["std"] == pytest.approx(0.02)
    assert summary["shifts"]["noise"]["gain"]["mean"] == pytest.approx(0.3)
    assert summary["shifts"]["noise"]["verdict"] == "helps" and summary["shifts"]["invert"]["verdict"] == "no clear effect"
    paired = summary["shifts"]["noise"]["paired"]
    # adaBN − before: differences 0.2, 0.3, 0.4 → mean 0.3, sd 0.1, half width t(2) · 0.1 / √3
    assert paired["target_before"]["mean"] == pytest.approx(0.3)
    assert paired["target_before"]["half_width"] == pytest.approx(4.3027 * 0.1 / math.sqrt(3), rel=1e-3)
    assert paired["target_before"]["significant"]
    # adaBN − batch statistics: −0.05 every seed, no spread: a zero-width interval that excludes 0
    assert paired["target_batch_stats"]["mean"] == pytest.approx(-0.05) and paired["target_batch_stats"]["significant"]
    assert not summary["shifts"]["invert"]["paired"]["target_source_reestimated"]["significant"]  # all zero
    config = {**A.asdict(A.QUICK), "shifts": shifts}
    results = {"command": "styletransfer ablate adabn -o y", "config": config, "environment": _env(), "seconds": 2.0,
               "clear_gain": 0.01, "runs": runs, "summary": summary}
    text = A.build_markdown(results)
    assert "92.0 ± 2.0 %" in text
    assert "| noise | 30.0 ± 0.0 | 31.0 ± 1.0 | 65.0 ± 10.0 | 60.0 ± 10.0 | 80.0 ± 0.0 | helps |" in text
    assert "| noise | 30 ± 25 (yes) | 29 ± 22 (yes) | -5 ± 0 (yes) |" in text
    for seed in (0, 1, 2):
        for shift in shifts:
            assert f"| {seed} | {shift} |" in text


def test_stats_report_marks_unexpected_rows():
    row = {"family": "transformer", "method": "batch", "training": True, "batch_size": 4, "expected": "dependent",
           "max_abs": 0.0, "mean_rel_l2": 0.0, "max_rel_l2": 0.0, "targets": 1, "compositions": 2}
    results = {"command": "c", "config": {**S.asdict(S.QUICK)}, "environment": _env(), "seconds": 1.0,
               "weights": {"source": "random:0"}, "decoder": "d", "transformer": "t",
               "thresholds": {"independent_max_abs": 1e-5, "dependent_mean_rel_l2": 1e-3},
               "rows": [{**row, "as_expected": False}], "all_as_expected": False}
    text = S.build_markdown(results)
    assert "TransformerNet norm=batch, train mode | 4 |" in text and "**NO**" in text


def test_line_plot_draws_every_series():
    image = line_plot({"a": [(0, 1.0), (10, 0.1)], "b": [(0, 2.0), (10, 0.5)]}, title="t", xlabel="x",
                      ylabel="y", log_y=True, size=(400, 300))
    assert image.size == (400, 300)
    colours = {image.getpixel((x, y)) for x in range(400) for y in range(300)}
    for hex_colour in PALETTE[:2]:
        assert tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)) in colours


# --- the network, the loss and the data ----------------------------------------------------


@pytest.mark.parametrize("norm", NORMS.names())
def test_transformer_builds_with_every_norm_and_keeps_the_size(norm):
    torch.manual_seed(0)
    net = build_transformer(norm, **TINY)
    for height, width in ((16, 16), (21, 34)):
        out = net(torch.rand(2, 3, height, width))
        assert out.shape == (2, 3, height, width)
        assert 0 <= out.min() and out.max() <= 1
    norm_layers = [m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm))]
    assert (len(norm_layers) == 0) == (norm == "none")


def test_transformer_file_round_trip(tmp_path):
    torch.manual_seed(0)
    net = build_transformer("batch", **TINY)
    A.reestimate_bn(net, [torch.rand(4, 3, 16, 16)])
    path = save_transformer(net, tmp_path / "net.safetensors", {"seed": 3})
    loaded, metadata = load_transformer(path)
    assert metadata == {"seed": 3} and loaded.config == net.config and not loaded.training
    image = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded(image), net.eval()(image))
    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(other))
    with pytest.raises(WeightsError, match="not a transformer"):
        load_transformer(other)


def test_perceptual_loss_is_zero_at_its_targets(encoder):
    style = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    loss = PerceptualLoss(encoder, style)
    content, style_term = loss(style.unsqueeze(0), style.unsqueeze(0))
    assert content.item() == 0 and style_term.item() < 1e-10
    content, style_term = loss(torch.zeros(1, 3, 32, 32), style.unsqueeze(0))
    assert content.item() > 0.1 and style_term.item() > 0.1


def test_content_batches_are_reproducible_and_held_out_photos_are_separate(tmp_path):
    from tests.conftest import write_image

    for index in range(3):
        write_image(tmp_path / f"p{index}.png", 40, 30, seed=index)
    data = ContentImages.from_folder(tmp_path, holdout=1, size=16)
    assert data.train_names == ["p0.png", "p1.png"] and data.heldout_names == ["p2.png"]
    first = data.train_batch(5, 3, 16, seed=0, photo_fraction=0.5)
    assert first.shape == (3, 3, 16, 16) and torch.equal(first, data.train_batch(5, 3, 16, seed=0, photo_fraction=0.5))
    assert not torch.equal(first, data.train_batch(6, 3, 16, seed=0, photo_fraction=0.5))
    assert torch.equal(data.heldout_set(4, 16), data.heldout_set(4, 16))
    scene = generated_image(24, torch.Generator().manual_seed(0))
    assert scene.shape == (3, 24, 24) and 0 <= scene.min() and scene.max() <= 1 and scene.std() > 0.05
    with pytest.raises(UsageError, match="needs at least"):
        ContentImages.from_folder(tmp_path, holdout=3, size=16)


# --- the command line ----------------------------------------------------------------------


def run_cli(*args):
    return CliRunner().invoke(main, ["ablate", *map(str, args), "--threads", "1"], catch_exceptions=False)


def test_cli_norm_smoke(tmp_path):
    out = tmp_path / "norm"
    result = run_cli("norm", "-o", out, "--quick", "--weights", "random", "--iters", 2, "--size", 32,
                     "--eval-every", 1, "--heldout", 2, "--no-progress", "--save-nets", "--seeds", "0,1",
                     "--lr", "1e-3,1e-2")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [a["norm"] for a in data["arms"]] == NORMS.names() * 2
    for arm in data["arms"]:  # each arm trained at its norm's swept rate; only BN re-estimated
        sweep = data["sweep"][arm["norm"]]
        assert set(sweep["scores"]) == {"0.001", "0.01"} and arm["lr"] == sweep["lr"]
        assert sweep["lr"] == min((1e-3, 1e-2), key=lambda lr: sweep["scores"][str(lr)])
        assert (arm["final_reestimated"] is not None) == (arm["norm"] == "batch")
    assert set(data["paired"]["total"]) == {"none", "batch", "batch (re-estimated)", "layer", "group"}
    assert all(len(a["curve"]) == 3 for a in data["arms"])  # iteration 0, 1, 2
    assert data["weights"]["source"] == "random:0" and data["config"]["iters"] == 2
    text = (out / "results.md").read_text()
    assert "styletransfer ablate norm --output-dir" in text and "--weights random" in text
    for name in ("curves.png", "train_curves.png", "samples.png"):
        assert (out / name).stat().st_size > 0
    again = run_cli("norm", "-o", out, "--quick", "--weights", "random", "--iters", 1, "--size", 32, "--no-progress")
    assert again.exit_code == 2 and "--overwrite" in again.output
    # The saved BN network feeds `ablate stats --transformer`.
    net = out / "nets" / "batch-seed0.safetensors"
    stats = run_cli("stats", "-o", tmp_path / "stats", "--weights", "random", "--size", 32, "--batch-sizes", 2,
                    "--compositions", 2, "--targets", 1, "--pool", 3, "--transformer", net, "--no-progress")
    assert stats.exit_code == 0, stats.output
    rows = json.loads((tmp_path / "stats" / "results.json").read_text())["rows"]
    assert {r["method"] for r in rows if r["family"] == "transformer"} == {"batch"}
    assert all(r["as_expected"] for r in rows)


def test_cli_stats_smoke(tmp_path):
    out = tmp_path / "stats"
    result = run_cli("stats", "-o", out, "--quick", "--weights", "random", "--size", 32, "--batch-sizes", 2,
                     "--compositions", 2, "--targets", 1, "--pool", 4, "--no-progress")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert data["all_as_expected"], data["rows"]
    methods = {(r["family"], r["method"], r["training"]) for r in data["rows"]}
    assert ("adain", "batch", None) in methods and ("transformer", "batch", True) in methods
    assert "AdaBN" in (out / "results.md").read_text()


def test_cli_adabn_smoke(tmp_path):
    out = tmp_path / "adabn"
    result = run_cli("adabn", "-o", out, "--quick", "--iters", 2, "--seeds", "0,1", "--shift", "noise",
                     "--shift", "invert", "--test-images", 40, "--adapt-images", 40, "--adapt-batch", 20,
                     "--no-progress")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [r["seed"] for r in data["runs"]] == [0, 1] and data["config"]["shifts"] == ["noise", "invert"]
    assert set(data["summary"]["shifts"]) == {"noise", "invert"}
    assert "| 1 | invert |" in (out / "results.md").read_text()


@pytest.mark.usefixtures("magenta")
def test_cli_adabn_runs_the_style_shift_which_is_a_default(tmp_path):
    assert "style" in A.AdaBNConfig().shifts and A.QUICK.shifts == A.AdaBNConfig().shifts
    out = tmp_path / "adabn"
    result = run_cli("adabn", "-o", out, "--quick", "--iters", 2, "--seeds", "0", "--shift", "style",
                     "--test-images", 8, "--adapt-images", 8, "--adapt-batch", 4, "--no-progress")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["shifts"] == ["style"] and set(data["runs"][0]["shifts"]) == {"style"}
    assert "| 0 | style |" in (out / "results.md").read_text()


def test_cli_bad_flags_are_one_line_usage_errors(tmp_path):
    result = run_cli("adabn", "-o", tmp_path / "a", "--shift", "nois")
    assert result.exit_code == 2 and "did you mean 'noise'" in result.output
    result = run_cli("norm", "-o", tmp_path / "b", "--norms", "batch,instnce", "--weights", "random")
    assert result.exit_code == 2 and "did you mean 'instance'" in result.output
    result = run_cli("adabn", "-o", tmp_path / "c", "--seeds", "0,¹")  # a digit to str.isdigit, not to int()
    assert result.exit_code == 2 and "not a whole number" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_cli_imagenet_weights_offline_is_one_line_error_and_writes_nothing(tmp_path, monkeypatch):
    import torch.hub

    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("Name or service not known")))
    result = run_cli("stats", "-o", tmp_path / "s", "--quick", "--weights", "imagenet")
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--weights" in errors[0]
    assert not (tmp_path / "s").exists()


# --- ablate moments ---------------------------------------------------------------------------------


def test_ablate_moments_matches_each_level_and_tests_the_judge_paired(tmp_path):
    from conftest import write_image

    (tmp_path / "c").mkdir()
    (tmp_path / "s").mkdir()
    for i in range(2):
        write_image(tmp_path / "c" / f"c{i}.png", 40, 30, seed=i)
    write_image(tmp_path / "s" / "s.png", 36, 36, seed=7)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "ablate", "moments", "-o", str(out), "--weights", "random", "--levels", "gram,bn-stats,mean-cov",
        "--content-dir", str(tmp_path / "c"), "--style-dir", str(tmp_path / "s"), "--size", "32", "--steps", "2",
        "--calibrate", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    summary = results["summary"]
    assert summary["methods"] == ["gram", "bn-stats", "mean-cov"] and summary["pairs"] == ["c0__s", "c1__s"]
    reports = [json.loads((out / "pairs" / p / "report.json").read_text()) for p in summary["pairs"]]
    for level in ("bn-stats", "mean-cov"):  # the paired differences recomputed from the pairs' own judges
        differences = [r["judge"][level] - r["judge"]["gram"] for r in reports]
        assert results["judge_vs_reference"][level]["mean"] == pytest.approx(sum(differences) / 2)
        assert all(r["runs"][level]["calibration"]["target"] == pytest.approx(r["runs"]["gram"]["content_loss"])
                   for r in reports)
    markdown = (out / "results.md").read_text()
    assert "Which statistics carry style?" in markdown and "significant" in markdown
    refused = CliRunner().invoke(main, ["ablate", "moments", "-o", str(tmp_path / "o2"), "--levels", "gram,nope"])
    assert refused.exit_code == 2 and "unknown style loss 'nope'" in refused.output


def test_norm_arms_are_compared_with_instance_paired_by_seed():
    arms = [{"norm": norm, "seed": seed, "final": {"total": total}}
            for norm, totals in (("instance", (1.0, 2.0, 3.0)), ("batch", (1.5, 2.4, 3.6)), ("none", (0.0, 3.0, 3.0)))
            for seed, total in enumerate(totals)]
    paired = N.paired_comparisons(arms, ("batch", "instance", "none"))
    assert set(paired) == {"batch", "none"}
    assert paired["batch"]["mean"] == pytest.approx(0.5) and paired["batch"]["n"] == 3
    assert paired["batch"]["significant"] is True  # 0.5, 0.4, 0.6: all worse than instance
    assert paired["none"]["mean"] == pytest.approx(0.0) and paired["none"]["significant"] is False
    assert N.paired_comparisons(arms, ("batch", "none")) == {}  # no reference arm
    for arm in arms:
        if arm["norm"] == "batch":
            arm["final_reestimated"] = {"total": arm["final"]["total"] - 0.5}
    paired = N.paired_comparisons(arms, ("batch", "instance", "none"))
    assert list(paired) == ["batch", "batch (re-estimated)", "none"]
    assert paired["batch (re-estimated)"]["mean"] == pytest.approx(0.0)


def test_the_learning_rate_sweep_picks_the_lowest_validation_loss_and_survives_a_nan(monkeypatch):
    from styletransfer.errors import TrainingError

    losses = {1e-3: 2.0, 3e-3: 1.0, 1e-2: None}  # None: the loss turned NaN at that rate

    def fake_train_arm(norm, seed, config, data, loss, heldout, device, progress, *, lr, unlabeled=None):
        assert seed == N.SWEEP_SEED and heldout == "validation"
        if losses[lr] is None:
            raise TrainingError("nan")
        return N.ArmResult(norm=norm, seed=seed, lr=lr, final={"total": losses[lr]}), None

    monkeypatch.setattr(N, "train_arm", fake_train_arm)
    config = N.NormConfig(lrs=(1e-3, 3e-3, 1e-2))
    sweep = N.sweep_learning_rate("batch", config, None, None, "validation", "cpu")
    assert sweep == {"lr": 3e-3, "scores": {"0.001": 2.0, "0.003": 1.0, "0.01": math.inf}}
    assert N.sweep_learning_rate("batch", N.NormConfig(lrs=(5e-4,)), None, None, "validation", "cpu") == \
        {"lr": 5e-4, "scores": {}}


def test_ablation_defaults_are_the_installed_samples_from_any_directory(tmp_path, monkeypatch):
    """The default sample images ship inside the package: no default depends on the working directory."""
    from pathlib import Path

    from conftest import write_image

    import styletransfer
    from styletransfer.ablate import data as D
    from styletransfer.ablate import moments as M
    from styletransfer.ablate import shapes as SH

    package = Path(styletransfer.__file__).resolve().parent
    for path in (Path(M.MomentsConfig().content_dir), Path(M.MomentsConfig().style_dir), D.DEFAULT_CONTENT_DIR,
                 D.DEFAULT_STYLE, SH.STYLE_ROOT):
        assert path.exists() and package in path.parents, path
    monkeypatch.chdir(tmp_path)  # no assets/ here
    (tmp_path / "s").mkdir()
    write_image(tmp_path / "s" / "s.png", 36, 36, seed=7)
    result = CliRunner().invoke(main, [
        "ablate", "moments", "-o", "out", "--weights", "random", "--levels", "gram,bn-stats",
        "--style-dir", "s", "--size", "24", "--steps", "1", "--calibrate", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    pairs = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]["pairs"]
    assert sorted(pairs) == sorted(f"{p.stem}__s" for p in D.DEFAULT_CONTENT_DIR.iterdir())
