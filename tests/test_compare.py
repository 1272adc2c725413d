"""``styletransfer compare``: report builders by hand, the identity check, and one end-to-end run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import write_image
from PIL import Image

from styletransfer.adain import AdaINModel, Decoder, save_decoder
from styletransfer.cli import main
from styletransfer.compare import (
    CompareConfig,
    StyleMeter,
    build_grid,
    build_report,
    compare_files,
    cross_loss_matrix,
    gram_poly_identity,
    identity_ratios,
    layer_weight_map,
    render_markdown,
    select_methods,
)
from styletransfer.compare.matrix import REFERENCE_ROW
from styletransfer.compare.report import RANDOM_WEIGHTS_NOTE
from styletransfer.errors import UsageError
from styletransfer.losses import STYLE_LOSSES
from styletransfer.memory import MEASURES
from styletransfer.optimize import Objective, StylizeConfig

ROOT = Path(__file__).resolve().parents[1]
LOSSES = STYLE_LOSSES.names()
SMALL = dict(scales=(48,), steps=8, style_layers=("relu1_1", "relu2_1", "relu3_1"), content_layers=("relu3_2",))


# --- pure report builders --------------------------------------------------------------------


def tiny_matrix():
    """Two methods, two losses, two layers with weights 0.25 / 0.75, numbers chosen by hand."""
    weights = {"l1": 0.25, "l2": 0.75}
    reference = {"gram": {"l1": 2.0, "l2": 4.0}, "bn-stats": {"l1": 10.0, "l2": 1.0}}
    per_layer = {
        "gram": {"gram": {"l1": 1.0, "l2": 1.0}, "bn-stats": {"l1": 10.0, "l2": 1.0}},
        "bn-stats": {"gram": {"l1": 2.0, "l2": 8.0}, "bn-stats": {"l1": 5.0, "l2": 0.5}},
    }
    return cross_loss_matrix(per_layer, reference, weights)


def test_cross_loss_matrix_by_hand():
    matrix = tiny_matrix()
    assert matrix["methods"] == ["gram", "bn-stats"] and matrix["losses"] == ["gram", "bn-stats"]
    normalized, raw = matrix["normalized"], matrix["raw"]
    assert set(normalized) == {"gram", "bn-stats"} and all(set(row) == {"gram", "bn-stats"} for row in normalized.values())
    # Σ_l λ_l · value_l / content_l
    assert normalized["gram"]["gram"] == pytest.approx(0.25 * 1 / 2 + 0.75 * 1 / 4)  # 0.3125
    assert normalized["bn-stats"]["gram"] == pytest.approx(0.25 * 2 / 2 + 0.75 * 8 / 4)  # 1.75
    assert normalized["bn-stats"]["bn-stats"] == pytest.approx(0.5)
    # an output at the content image's distance reads exactly 1 (normalised by the content column)
    assert normalized["gram"]["bn-stats"] == pytest.approx(1.0)
    # raw values are layer-weighted sums, with the content image as the reference row
    assert list(raw) == [REFERENCE_ROW, "gram", "bn-stats"]
    assert raw[REFERENCE_ROW] == pytest.approx({"gram": 0.25 * 2 + 0.75 * 4, "bn-stats": 0.25 * 10 + 0.75 * 1})
    assert raw["bn-stats"]["gram"] == pytest.approx(0.25 * 2 + 0.75 * 8)
    assert matrix["per_layer_raw"]["bn-stats"]["bn-stats"] == {"l1": 5.0, "l2": 0.5}


def test_normalisation_scales_inversely_with_the_content_distance():
    weights = {"l1": 1.0}
    one = cross_loss_matrix({"gram": {"gram": {"l1": 3.0}}}, {"gram": {"l1": 6.0}}, weights)
    two = cross_loss_matrix({"gram": {"gram": {"l1": 3.0}}}, {"gram": {"l1": 12.0}}, weights)
    assert one["normalized"]["gram"]["gram"] == pytest.approx(0.5)
    assert two["normalized"]["gram"]["gram"] == pytest.approx(0.25)


def tiny_report(source="random:0"):
    matrix = tiny_matrix()
    config = CompareConfig(stylize=StylizeConfig(**SMALL), methods=("gram", "bn-stats"))
    runs = {m: {"seconds": 1.5, "steps": 8, "content_loss": 0.1, "image": f"{m}.png",
                "memory": {"measure": "cpu-rss-sampled", "peak_bytes": 3 * 2**20, "baseline_bytes": 0}}
            for m in matrix["methods"]}
    identity = gram_poly_identity({"l1": torch.randn(1, 4, 3, 3)}, {"l1": torch.randn(1, 4, 2, 5)})
    return build_report(command="styletransfer compare c.png s.png -o out", content="c.png", style="s.png",
                        size=(48, 30), config=config, encoder={"source": source, "sha256": None}, decoder=None,
                        environment={"device": "cpu"}, matrix=matrix, runs=runs, identity=identity)


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading``."""
    lines = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    return table


def test_report_and_markdown_hold_every_method_and_loss():
    report = tiny_report()
    json.dumps(report)  # the report is JSON as it stands
    assert report["diagonal"] == pytest.approx({"gram": 0.3125, "bn-stats": 0.5})
    assert report["diagonal_below_one"] is True
    assert report["encoder"]["random"] is True and RANDOM_WEIGHTS_NOTE in report["notes"]
    assert set(report["memory_measures"]) == {"cpu-rss-sampled"}
    markdown = render_markdown(report)
    assert "styletransfer compare c.png s.png -o out" in markdown.split("## Cross-loss matrix")[0]
    assert "not representative" in markdown
    rows = table_rows(markdown, "## Cross-loss matrix")
    assert rows[0][1:] == ["`gram`", "`bn-stats`"]
    assert [r[0] for r in rows[2:]] == ["`gram`", "`bn-stats`"]
    assert rows[2][1] == "**0.312**" and rows[3][2] == "**0.5**" and rows[3][1] == "1.75"
    raw_rows = table_rows(markdown, "### Raw values")
    assert [r[0] for r in raw_rows[2:]] == ["`content`", "`gram`", "`bn-stats`"]
    run_rows = table_rows(markdown, "## Runs")
    assert [r[0] for r in run_rows[2:]] == ["`gram`", "`bn-stats`"] and run_rows[2][5] == "3.0 MiB"
    assert run_rows[0][3] == "style weight" and run_rows[2][3] == "—"  # no weight recorded: feed-forward or old run
    assert "`l1`" in markdown.split("## Gram ≡ poly-MMD identity")[1]


def test_real_weights_carry_no_random_note():
    report = tiny_report(source="imagenet")
    from styletransfer.compare.report import UNCALIBRATED_NOTE

    assert report["encoder"]["random"] is False and report["notes"] == [UNCALIBRATED_NOTE]
    assert "not representative" not in render_markdown(report)


def test_grid_cells_fit_the_widest_tile_and_draw_labels():
    tiles = [(["content"], Image.new("RGB", (20, 10), (0, 0, 255))),
             (["gram", "1.0 s"], Image.new("RGB", (30, 16), (255, 0, 0))),
             (["x"], Image.new("RGB", (8, 8), (0, 255, 0)))]
    grid = build_grid(tiles, columns=2)
    padding = 6
    cell_w = (grid.width - 3 * padding) // 2
    assert cell_w >= 30 and grid.width == 2 * cell_w + 3 * padding
    pixels = grid.load()
    assert pixels[padding + cell_w // 2, padding + 8] == (0, 0, 255)  # first tile: centred, on its label
    label_band = grid.crop((padding, padding + 16, padding + cell_w, padding + 30)).convert("L")
    assert label_band.getextrema()[0] < 128  # text was drawn under the image


# --- the Gram ≡ poly-MMD identity ------------------------------------------------------------


@pytest.mark.parametrize("max_positions", [4, 1024])
def test_identity_ratio_is_one_on_random_features(max_positions):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 16, 5, 7, generator=g) + 0.3  # different sizes on purpose
    y = torch.randn(1, 16, 6, 4, generator=g).relu()
    ratios = identity_ratios(x, y, max_positions=max_positions, generator=g)
    assert ratios["channels"] == 16 and ratios["positions"] == min(24, max_positions)
    assert "ratio_library" not in ratios  # gram_loss vs mmd_poly(d=2) went through the same Grams: 1 by construction
    assert ratios["ratio_kernel"] == pytest.approx(1.0, abs=1e-5)


def test_identity_summary_over_layers():
    g = torch.Generator().manual_seed(4)
    content = {"a": torch.randn(1, 8, 4, 4, generator=g), "b": torch.randn(1, 3, 6, 2, generator=g)}
    style = {"a": torch.randn(1, 8, 3, 5, generator=g), "b": torch.randn(1, 3, 2, 2, generator=g)}
    summary = gram_poly_identity(content, style, max_positions=6)
    assert list(summary["layers"]) == ["a", "b"] and summary["layers"]["b"]["positions"] == 4
    assert summary["spread_kernel"] < 1e-5 and summary["max_deviation_kernel"] < 1e-5


# --- measurement against the stylizer --------------------------------------------------------


DETERMINISTIC = [name for name in LOSSES if not STYLE_LOSSES.get(name).randomized]
RANDOMIZED = [name for name in LOSSES if STYLE_LOSSES.get(name).randomized]


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_meter_measures_what_the_stylizer_optimises(encoder, name):
    """The normalised matrix entry of an image equals the stylizer's own style term for that loss."""
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 32, 48, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    image = (content + 0.2 * torch.rand(content.shape, generator=g)).clamp(0, 1)
    config = StylizeConfig(losses=((name, 1.0),), tv_weight=0.0, layer_weights=(0.5, 0.3, 0.2), seed=7,
                           **{k: v for k, v in SMALL.items()}).validate()
    meter = StyleMeter(encoder, content, style, config, LOSSES)
    matrix = cross_loss_matrix({"x": meter.style_distances(image)}, meter.style_distances(content),
                               layer_weight_map(config))
    objective = Objective(encoder, content, [style], config, torch.Generator().manual_seed(config.seed))
    _, record = objective(image)
    assert matrix["normalized"]["x"][name] == pytest.approx(record["style"], rel=1e-4)
    assert meter.content_loss(image) == pytest.approx(record["content"], rel=1e-4)


@pytest.mark.parametrize("name", RANDOMIZED)
def test_random_losses_are_measured_with_draws_independent_of_the_optimisation(encoder, name):
    """A random loss is measured with its own draws, not those the stylizer optimised under (which
    would favour that loss's row), and the same image always measures the same."""
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 32, 48, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    image = (content + 0.2 * torch.rand(content.shape, generator=g)).clamp(0, 1)
    config = StylizeConfig(losses=((name, 1.0),), tv_weight=0.0, seed=7, **SMALL).validate()
    meter = StyleMeter(encoder, content, style, config, [name])
    objective = Objective(encoder, content, [style], config, torch.Generator().manual_seed(config.seed))
    measured = meter.style_distances(image)[name]
    assert measured == meter.style_distances(image)[name]  # fixed, not redrawn per call
    with torch.no_grad():
        features = encoder(image, config.style_layers)
        used = {layer: float(module.denominator(features[layer]).sum())
                for _, _, layer, module in objective.terms}
    assert all(v >= 0 for v in measured.values())
    assert any(abs(measured[l] - used[l]) > 1e-6 * max(abs(used[l]), 1e-12) for l in measured), \
        "the meter reused the optimisation's random draws"


def test_adain_tile_is_the_stylizers_output_at_the_content_size(tmp_path, image_pair, encoder):
    """compare's AdaIN is stylize --method adain's stylizer on the working images: same pixels."""
    from styletransfer.adain import load_decoder
    from styletransfer.adain.stylizer import AdaINConfig, AdaINStylizer
    from styletransfer.imageio import load_image, resize_edge

    decoder = save_decoder(Decoder("none"), tmp_path / "d.safetensors", {"encoder": {"source": "random:0"}})
    config = CompareConfig(stylize=StylizeConfig(scales=(44,), steps=1), methods=("adain",))
    compare_files(image_pair[0], image_pair[1], tmp_path / "out", config, weights=encoder, decoder=decoder)
    tile = load_image(tmp_path / "out" / "adain.png")
    content, style = (resize_edge(load_image(p), 44) for p in image_pair)
    assert tile.shape == content.shape == (3, 29, 44)  # neither side a multiple of 8
    model = AdaINModel(encoder, load_decoder(decoder)[0])
    expected = AdaINStylizer(model, AdaINConfig(content_size=0, style_size=0, tile_size=0)).stylize(content, [style])
    assert (tile - expected).abs().max() <= 1 / 255 + 1e-6  # the PNG's 8-bit rounding


# --- method selection and the command line ---------------------------------------------------


def test_only_identical_objectives_are_merged():
    """mmd-poly is merged into gram only where the normalised objectives are the same."""
    from styletransfer.compare.selection import same_objectives

    methods = ("gram", "mmd-poly", "bn-stats")
    assert same_objectives(methods, StylizeConfig()) == {"mmd-poly": "gram"}
    assert same_objectives(methods, StylizeConfig(loss_options={"mmd-poly": {"c": 1.0}})) == {}
    assert same_objectives(methods, StylizeConfig(loss_options={"mmd-poly": {"degree": 3}})) == {}
    assert same_objectives(methods, StylizeConfig(normalize=False)) == {}  # then the factor 4C² matters
    assert same_objectives(("mmd-poly", "bn-stats"), StylizeConfig()) == {}


def test_select_methods():
    linear = [l for l in LOSSES if STYLE_LOSSES.get(l).cost == "linear"]
    assert "mrf" in LOSSES and "mrf" not in linear  # quadratic in the positions: run only when named
    assert select_methods() == (*linear, "magenta")
    assert select_methods(decoder=True) == (*linear, "adain", "wct", "magenta")
    assert select_methods(only=("bn-stats", "gram")) == ("gram", "bn-stats")  # registry order
    assert select_methods(only=("mrf", "gram")) == ("gram", "mrf")
    assert select_methods(skip=("mmd-rbf", "magenta"), decoder=True) == (
        *[l for l in linear if l != "mmd-rbf"], "adain", "wct")
    with pytest.raises(UsageError, match="did you mean 'gram'"):
        select_methods(only=("gramm",))
    with pytest.raises(UsageError, match="--decoder"):
        select_methods(only=("adain",))
    with pytest.raises(UsageError, match="no method"):
        select_methods(only=("gram",), skip=("gram",))


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_existing_results_are_never_overwritten(tmp_path, image_pair):
    content, style = image_pair
    out = tmp_path / "out"
    out.mkdir()
    (out / "gram.png").write_bytes(b"keep me")
    result = run_cli("compare", content, style, "-o", out, "--weights", "random", "--size", 32, "--steps", 1,
                     "--no-progress")
    assert result.exit_code == 2 and "--overwrite" in result.output and "Traceback" not in result.output
    assert (out / "gram.png").read_bytes() == b"keep me" and not (out / "report.json").exists()
    result = run_cli("compare", content, style, "-o", content, "--weights", "random", "--no-progress")
    assert result.exit_code == 2 and "is a file" in result.output


@pytest.mark.parametrize("flags,needle", [
    (["--only", "gram,bnstats"], "did you mean 'bn-stats'"),
    (["--only", "adain"], "--decoder"),
    (["--skip", ",".join(STYLE_LOSSES.names()[:3]), "--skip", ",".join([*STYLE_LOSSES.names()[3:], "magenta"])],
     "no method"),
])
def test_bad_method_flags_are_usage_errors(tmp_path, image_pair, flags, needle):
    content, style = image_pair
    result = run_cli("compare", content, style, "-o", tmp_path / "out", "--weights", "random", *flags)
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_end_to_end_every_formulation_reduces_its_own_loss(tmp_path):
    """The acceptance criterion at 48 px: complete matrix, grid, both reports, diagonal < 1."""
    content = write_image(tmp_path / "content.png", 100, 62, seed=1)  # 48x30 at --size 48: not a multiple of 8
    style = write_image(tmp_path / "style.png", 80, 80, seed=2)
    decoder = save_decoder(Decoder("none"), tmp_path / "decoder.safetensors", {"encoder": {"source": "random:0"}})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "styletransfer", "compare", str(content), str(style), "-o", str(out),
               "--weights", "random", "--size", "48", "--steps", "8", "--decoder", str(decoder), "--no-progress",
               "--style-layers", "relu1_1,relu2_1,relu3_1", "--content-layers", "relu3_2"]
    # One thread: a 48 px run gains nothing from more, and on a loaded machine idle threads spin.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "not representative" in done.stderr

    report = json.loads((out / "report.json").read_text())
    # mmd-poly (d = 2, c = 0) is gram's objective up to 4C²: run and shown once, as gram, with a note
    linear = [l for l in LOSSES if STYLE_LOSSES.get(l).cost == "linear" and l != "mmd-poly"]
    methods = [*linear, "adain", "wct", "magenta"]
    assert report["methods"] == methods and report["merged"] == {"mmd-poly": "gram"}
    assert any(note.startswith("mmd-poly is gram's objective") for note in report["notes"])
    matrix = report["matrix"]
    assert matrix["methods"] == methods and matrix["losses"] == linear
    for method in methods:
        assert list(matrix["normalized"][method]) == linear
        assert all(math.isfinite(v) and v >= 0 for v in matrix["normalized"][method].values())
        assert Image.open(out / f"{method}.png").size == (48, 30)
        run = report["runs"][method]
        assert run["seconds"] > 0 and run["memory"]["measure"] in MEASURES
        assert run["steps"] == (None if method in ("adain", "wct", "magenta") else 8)
    for loss in linear:  # each formulation's own loss on its own output is below the content image's
        assert matrix["normalized"][loss][loss] < 1, loss
        assert matrix["raw"][loss][loss] < matrix["raw"][REFERENCE_ROW][loss]
    assert report["diagonal_below_one"] is True
    identity = report["identity"]
    assert list(identity["layers"]) == list(report["config"]["stylize"]["style_layers"])
    assert identity["max_deviation_kernel"] < 1e-5
    assert report["encoder"]["random"] is True and report["decoder"]["norm"] == "none"

    markdown = (out / "report.md").read_text()
    command_line = markdown.splitlines()[3]  # inside the header's code block
    assert command_line.startswith("python -m styletransfer compare") and "--decoder" in command_line
    assert "not representative" in markdown
    rows = table_rows(markdown, "## Cross-loss matrix")
    assert [r[0] for r in rows[2:]] == [f"`{m}`" if m != "gram" else "`gram` ≡ `mmd-poly`" for m in methods]
    grid = Image.open(out / "grid.png")
    # content, style and a tile per method, 4 per row
    assert grid.format == "PNG" and grid.width >= 4 * 48 and grid.height >= 3 * 30


def test_cpu_peak_memory_sees_a_large_temporary(monkeypatch):
    import mmap
    import time

    from styletransfer import memory

    size = 64 * 2**20  # bytes
    with memory.PeakMemory("cpu") as meter:
        # fresh anonymous pages, each touched: resident whatever the allocator keeps from earlier tests
        # (a malloc'd tensor here once reused freed memory and the RSS did not move)
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        deadline = time.monotonic() + 5.0  # a loaded machine may delay the sampling thread
        while meter._peak - meter._start < size // 2 and time.monotonic() < deadline:
            time.sleep(memory.SAMPLE_INTERVAL_S)
        block.close()
    assert meter.usage.measure == "cpu-rss-sampled" and meter.usage.peak_bytes >= size // 2
    monkeypatch.setattr(memory, "STATM", Path("/nonexistent/statm"))  # a platform without /proc
    with memory.PeakMemory("cpu") as meter:
        pass
    assert meter.usage.measure in ("cpu-maxrss", "unavailable") and meter.usage.measure in MEASURES


def test_a_pytorch_adain_decoder_with_another_encoder_warns_as_stylize_does(tmp_path, image_pair, encoder):
    """compare used to check only our decoders' recorded encoder, so pytorch-AdaIN's decoder.pth
    (which records none) with a non-AdaIN encoder was silent where stylize --method adain warns."""
    from tests.helpers.reference_nets import pytorch_adain_decoder, randomize_

    decoder = tmp_path / "decoder.pth"
    torch.save(randomize_(pytorch_adain_decoder(), seed=1).state_dict(), decoder)
    config = CompareConfig(stylize=StylizeConfig(scales=(32,), steps=1), methods=("adain",))
    with pytest.warns(UserWarning, match="records no encoder"):
        report = compare_files(image_pair[0], image_pair[1], tmp_path / "out", config, weights=encoder,
                               decoder=decoder)
    assert any("records no encoder" in note for note in report["notes"])


# --- calibration ---------------------------------------------------------------------------------


def test_calibration_finds_the_weight_of_the_target_content_loss():
    """On a power law c(w) = a·w^b (what a stylisation's content loss nearly follows) the secant
    search in log–log space lands on the target within the tolerance in a few runs."""
    from styletransfer.compare.calibration import calibrate

    calls = []

    def content_loss_at(weight):
        calls.append(weight)
        return 0.02 * weight**0.6

    result = calibrate(content_loss_at, target=0.3, start=20.0, runs=5, tolerance=0.01)
    assert result.relative_error <= 0.01 and len(calls) <= 3
    assert result.style_weight == pytest.approx((0.3 / 0.02) ** (1 / 0.6), rel=0.02)
    assert [w for w, _ in result.tried] == calls and result.to_dict()["target"] == 0.3


def test_calibration_stops_at_the_run_budget_and_keeps_the_closest_try():
    from styletransfer.compare.calibration import calibrate

    flat_then_jump = lambda w: 0.1 if w < 1000 else 0.9  # noqa: E731 - no slope to follow
    result = calibrate(flat_then_jump, target=0.5, start=20.0, runs=2)
    assert len(result.tried) == 2 and result.content_loss in (0.1, 0.9)
    # from one try the slope is INITIAL_SLOPE: 20·(0.5/0.1)^(1/0.2) = 20·3125, limited to a factor MAX_STEP
    assert result.tried[1][0] == pytest.approx(2000.0)
    with pytest.raises(ValueError):
        calibrate(flat_then_jump, target=0.5, start=20.0, runs=0)
    from styletransfer.compare.calibration import MAX_STEP, next_weight

    # a nearly flat secant asks for an astronomically large step: bounded, no overflow
    assert next_weight([(20.0, 0.1), (20.0 * 1e-6 + 20.0, 0.1000000001)], target=1e6) == pytest.approx(
        (20.0 * 1e-6 + 20.0) * MAX_STEP)


def test_compare_calibrates_each_method_to_the_first_methods_content_loss(tmp_path):
    content = write_image(tmp_path / "content.png", 64, 48, seed=1)
    style = write_image(tmp_path / "style.png", 64, 64, seed=2)
    stylize_config = StylizeConfig(scales=(48,), steps=8, style_layers=("relu1_1", "relu2_1", "relu3_1"),
                                   content_layers=("relu3_2",))
    config = CompareConfig(stylize=stylize_config, methods=("gram", "bn-stats", "mean-cov"), calibrate=3)
    report = compare_files(content, style, tmp_path / "out", config, weights="random", device="cpu")
    runs = report["runs"]
    target = runs["gram"]["content_loss"]
    assert runs["gram"]["calibration"]["tried"] == [[stylize_config.style_weight, target]]
    for method in ("bn-stats", "mean-cov"):
        calibration = runs[method]["calibration"]
        first_weight, first_loss = calibration["tried"][0]
        assert first_weight == stylize_config.style_weight and calibration["target"] == pytest.approx(target)
        assert 1 <= len(calibration["tried"]) <= 3
        # the chosen run is the closest try, and its output is the one measured and written
        assert abs(math.log(calibration["content_loss"] / target)) <= abs(math.log(first_loss / target)) + 1e-12
        assert runs[method]["style_weight"] == calibration["style_weight"]
        assert runs[method]["content_loss"] == pytest.approx(calibration["content_loss"], rel=1e-6)
    assert any(note.startswith("calibrated strength") for note in report["notes"])
    assert "style weight" in (tmp_path / "out" / "report.md").read_text()


# --- the judge and many pairs ----------------------------------------------------------------------


def test_the_judge_scores_the_content_one_and_the_style_zero():
    from styletransfer.compare.judge import EmbeddingJudge

    g = torch.Generator().manual_seed(5)
    content, style = torch.rand(3, 40, 56, generator=g), torch.rand(3, 40, 56, generator=g) ** 3
    judge = EmbeddingJudge(content, style)
    assert judge(content) == pytest.approx(1.0, rel=1e-5) and judge(style) == pytest.approx(0.0, abs=1e-6)
    halfway = judge(0.5 * content + 0.5 * style)
    assert 0 < halfway and math.isfinite(halfway)


def fake_report(values: dict, judge: dict, content_loss: dict) -> dict:
    methods, losses = list(values), list(next(iter(values.values())))
    return {"matrix": {"methods": methods, "losses": losses, "normalized": values}, "judge": judge,
            "runs": {m: {"content_loss": content_loss[m]} for m in methods}, "encoder": {"source": "random:0"},
            "config": {}, "notes": ["n"], "merged": {}}


def test_aggregate_gives_means_and_t_intervals_over_pairs():
    from styletransfer.compare.pairs import aggregate, render_summary

    reports = {
        "a__x": fake_report({"gram": {"gram": 0.2, "bn-stats": 0.6}, "bn-stats": {"gram": 0.7, "bn-stats": 0.1}},
                            {"gram": 0.5, "bn-stats": 0.9}, {"gram": 0.3, "bn-stats": 0.2}),
        "b__x": fake_report({"gram": {"gram": 0.4, "bn-stats": 0.8}, "bn-stats": {"gram": 0.9, "bn-stats": 0.3}},
                            {"gram": 0.7, "bn-stats": 1.1}, {"gram": 0.5, "bn-stats": 0.4}),
    }
    summary = aggregate(reports)
    assert summary["columns"] == ["gram", "bn-stats", "judge"] and summary["pairs"] == ["a__x", "b__x"]
    cell = summary["normalized"]["gram"]["gram"]
    sd = math.sqrt(2 * 0.1**2)  # values 0.2 and 0.4
    assert cell["mean"] == pytest.approx(0.3) and cell["half_width"] == pytest.approx(12.706 * sd / math.sqrt(2))
    assert summary["normalized"]["bn-stats"]["judge"]["mean"] == pytest.approx(1.0)
    assert summary["content_loss"]["gram"]["mean"] == pytest.approx(0.4)
    assert summary["own_loss_below_one"] == {"gram": 2, "bn-stats": 2}
    assert "0.3 ± " in render_summary(summary, "styletransfer compare ...")
    reports["c__x"] = fake_report({"gram": {"gram": 0.1}}, {"gram": 0.5}, {"gram": 0.3})
    with pytest.raises(ValueError, match="c__x"):
        aggregate(reports)


def test_compare_folders_runs_every_pair_and_writes_a_summary(tmp_path):
    from styletransfer.compare.pairs import compare_folders

    contents, styles = tmp_path / "contents", tmp_path / "styles"
    contents.mkdir()
    styles.mkdir()
    for i, name in enumerate(("a.png", "b.png")):
        write_image(contents / name, 40, 30, seed=i)
    write_image(styles / "s.png", 36, 36, seed=9)
    stylize_config = StylizeConfig(scales=(32,), steps=2, style_layers=("relu1_1", "relu2_1"),
                                   content_layers=("relu2_1",))
    config = CompareConfig(stylize=stylize_config, methods=("gram", "bn-stats"))
    summary = compare_folders(contents, styles, tmp_path / "out", config, weights="random", device="cpu")
    measured = [l for l in LOSSES if STYLE_LOSSES.get(l).cost == "linear" and l != "mmd-poly"]  # merged into gram
    assert summary["pairs"] == ["a__s", "b__s"] and summary["columns"] == [*measured, "judge"]
    assert summary["methods"] == ["gram", "bn-stats"]
    for pair in summary["pairs"]:
        report = json.loads((tmp_path / "out" / pair / "report.json").read_text())
        assert set(report["judge"]) == {"gram", "bn-stats"}
    assert summary["normalized"]["gram"]["judge"]["n"] == 2
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["normalized"] == summary["normalized"]
    assert "mean ± 95% interval" in (tmp_path / "out" / "summary.md").read_text()
    with pytest.raises(UsageError, match="summary.json"):  # nothing overwritten without --overwrite
        compare_folders(contents, styles, tmp_path / "out", config, weights="random", device="cpu")


@pytest.mark.parametrize("args,needle", [
    (["--content-dir", "c"], "--content-dir and --style-dir"),
    (["a.png", "--content-dir", "c", "--style-dir", "s"], "no CONTENT or STYLE"),
    (["a.png"], "give CONTENT and STYLE"),
])
def test_folder_comparison_flags_are_checked(tmp_path, args, needle):
    result = run_cli("compare", *args, "-o", tmp_path / "out", "--weights", "random")
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output


def test_pair_notes_keep_each_note_once_and_the_calibration_note_in_general_words():
    from styletransfer.compare.pairs import CALIBRATED_PAIRS_NOTE, pair_notes

    notes = [["random weights", "calibrated strength: ... (0.184) ..."], ["random weights", "calibrated strength: (0.3)"]]
    assert pair_notes(notes) == [CALIBRATED_PAIRS_NOTE, "random weights"]
    assert pair_notes([["a"], ["b", "a"]]) == ["a", "b"]
