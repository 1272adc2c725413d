"""``styletransfer stylize --method adain`` end to end, and the new options of the optimisation method."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_image
from PIL import Image

from styletransfer import color
from styletransfer.adain import AdaINModel, adain, mean_std, save_decoder
from styletransfer.api import plan_jobs
from styletransfer.cli import main
from styletransfer.errors import UsageError
from styletransfer.imageio import load_image, read_metadata, resize_to
from styletransfer.weights import load_encoder, sha256_file
from tests.helpers.adain_helpers import ADAIN_ENCODER_CHILDREN, pytorch_adain_encoder, seeded_decoder

CONTENT_SIZE = (67, 45)  # (width, height): odd, not a multiple of 8


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """A pytorch-AdaIN vgg[:31] file (to relu4_1, fast to load) and our decoder trained "with" it."""
    folder = tmp_path_factory.mktemp("adain_nets")
    vgg = folder / "vgg.pth"
    torch.save(pytorch_adain_encoder(seed=5, children=ADAIN_ENCODER_CHILDREN).state_dict(), vgg)
    encoder = load_encoder(str(vgg))
    # calibrated on images like the tests' own (write_image's gradients and noise)
    content, style_a, style_b = (load_image(write_image(folder / f"{i}.png", *size, seed=i)).unsqueeze(0)
                                 for i, size in enumerate((CONTENT_SIZE, (40, 32), (30, 36)), start=1))
    with torch.no_grad():
        features = encoder(content[..., :40, :64], ["relu4_1"])["relu4_1"]
        targets = torch.cat([features] + [adain(features, *mean_std(encoder(s, ["relu4_1"])["relu4_1"]))
                                          for s in (style_a, style_b)])
    decoder = save_decoder(seeded_decoder(7, targets), folder / "decoder.safetensors",
                           {"encoder": {"source": str(vgg), "sha256": sha256_file(vgg)}})
    return vgg, decoder


@pytest.fixture
def files(tmp_path):
    content = write_image(tmp_path / "content.png", *CONTENT_SIZE, seed=1)
    style_a = write_image(tmp_path / "style_a.png", 40, 32, seed=2)
    style_b = write_image(tmp_path / "style_b.jpg", 30, 36, seed=3)
    white = tmp_path / "white.png"
    Image.new("L", (20, 20), 255).save(white)
    return content, style_a, style_b, white


def adain_flags(nets):
    vgg, decoder = nets
    return ["--method", "adain", "--weights", vgg, "--decoder", decoder, "--content-size", 0, "--style-size", 0,
            "--no-progress"]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("option", ["plain", "alpha", "coral", "histogram", "luminance", "blend", "mask", "crop",
                                    "content-size", "report"])
def test_adain_option_writes_an_image_of_the_contents_size(tmp_path, nets, files, option):
    content, style_a, style_b, white = files
    half = tmp_path / "half.png"
    Image.fromarray(np.tile((np.arange(67) < 30).astype(np.uint8) * 255, (45, 1)), "L").save(half)
    extra = {"plain": [], "alpha": ["--alpha", 0.4], "coral": ["--preserve-color", "coral"],
             "histogram": ["--preserve-color", "histogram"], "luminance": ["--preserve-color", "luminance"],
             "blend": ["--style", style_b, "--style-blend", "0.3,0.7"], "mask": ["--style", style_b, "--mask", half],
             "crop": ["--crop"], "content-size": ["--content-size", 40], "report": ["--report", tmp_path / "r.json"]}
    expected = {"crop": (45, 45), "content-size": (60, 40)}.get(option, CONTENT_SIZE)
    out = tmp_path / "out" / "result.png"
    result = run("stylize", content, style_a, "-o", out, *adain_flags(nets), *extra[option])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output  # the decoder records this encoder's sha256
    assert Image.open(out).size == expected
    metadata = read_metadata(out)
    assert metadata["method"] == "adain" and metadata["decoder"]["sha256"] == sha256_file(nets[1])
    assert metadata["config"]["alpha"] == (0.4 if option == "alpha" else 1.0)
    assert metadata["config"]["preserve_color"] == (option if option in ("coral", "histogram", "luminance") else "none")
    image = pixels(out)
    assert image.std() > 10 and ((image > 0) & (image < 255)).mean() > 0.5  # a picture, not a clipped blank
    if option == "report":
        data = json.loads((tmp_path / "r.json").read_text())
        assert data["method"] == "adain" and data["outputs"][0]["output_size"] == list(CONTENT_SIZE)
        assert set(data["seconds"]) == {"load_models", "style_statistics", "stylize", "total"}
        assert data["config"]["content_size"] == 0 and data["style_statistics_computed"] == 1
        assert data["weights"]["sha256"] == sha256_file(nets[0])


def test_an_all_white_mask_gives_the_foreground_style_alone(tmp_path, nets, files):
    content, style_a, style_b, white = files
    masked, single = tmp_path / "masked.png", tmp_path / "single.png"
    assert run("stylize", content, style_a, style_b, "--mask", white, "-o", masked, *adain_flags(nets)).exit_code == 0
    assert run("stylize", content, style_a, "-o", single, *adain_flags(nets)).exit_code == 0
    assert np.array_equal(pixels(masked), pixels(single))


def count_statistics(monkeypatch) -> list:
    calls = []
    original = AdaINModel.style_statistics
    monkeypatch.setattr(AdaINModel, "style_statistics", lambda self, style: calls.append(1) or original(self, style))
    return calls


def test_folder_mode_writes_every_combination_computing_each_style_once(tmp_path, nets, monkeypatch):
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    contents.mkdir(), styles.mkdir()
    sizes = {"cat": (67, 45), "dog": (33, 40)}
    for seed, (name, size) in enumerate(sizes.items()):
        write_image(contents / f"{name}.png", *size, seed=seed)
    for seed, name in enumerate(("wave.png", "ink.jpg", "dots.png")):
        write_image(styles / name, 36, 28, seed=10 + seed)
    (styles / "notes.txt").write_text("not an image")
    calls = count_statistics(monkeypatch)
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = run("stylize", "--content-dir", contents, "--style-dir", styles, "-o", out, "--report", report,
                 *adain_flags(nets))
    assert result.exit_code == 0, result.output
    assert len(calls) == 3  # once per style, not once per pair
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{c}_stylized_{s}.png" for c in sizes for s in ("wave", "ink", "dots"))
    for name, size in sizes.items():
        assert Image.open(out / f"{name}_stylized_ink.png").size == size
    data = json.loads(report.read_text())
    assert len(data["outputs"]) == 6 and data["style_statistics_computed"] == 3 and data["folder_mode"]


@pytest.mark.parametrize("preserve,expected_calls", [("none", 1), ("coral", 2)])
def test_colour_matched_styles_are_computed_per_pair(tmp_path, nets, files, monkeypatch, preserve, expected_calls):
    content, style_a, style_b, white = files
    contents = tmp_path / "contents"
    contents.mkdir()
    write_image(contents / "one.png", 24, 20, seed=4), write_image(contents / "two.png", 20, 24, seed=5)
    calls = count_statistics(monkeypatch)
    result = run("stylize", style_a, "--content-dir", contents, "-o", tmp_path / "out", "--preserve-color", preserve,
                 *adain_flags(nets))
    assert result.exit_code == 0, result.output
    assert len(calls) == expected_calls  # coral makes each content's style different
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one_stylized_style_a.png", "two_stylized_style_a.png"]


def test_plan_jobs_names_and_collisions(tmp_path, files):
    content, style_a, style_b, white = files
    (job,) = plan_jobs(content, [style_a, style_b], tmp_path / "o.png")
    assert job.styles == (style_a, style_b) and job.output == tmp_path / "o.png"
    folder = tmp_path / "styles"
    folder.mkdir()
    write_image(folder / "x.png", 20, 20), write_image(folder / "y.webp", 20, 20)
    jobs = plan_jobs(content, [], tmp_path / "out", style_dir=folder, ext="jpg")
    assert [j.output.name for j in jobs] == ["content_stylized_x.jpg", "content_stylized_y.jpg"]
    together = plan_jobs(None, [style_a, style_b], tmp_path / "out", content_dir=folder)
    assert [j.output.name for j in together] == ["x_stylized_style_a+style_b.png", "y_stylized_style_a+style_b.png"]
    write_image(folder / "x.jpg", 20, 20)
    with pytest.raises(UsageError, match="would both write"):
        plan_jobs(content, [], tmp_path / "out", style_dir=folder)
    with pytest.raises(UsageError, match="is a file"):
        plan_jobs(content, [], content, style_dir=folder)


@pytest.mark.parametrize("flags,needle", [
    (["--method", "adain"], "needs --decoder"),
    (["--method", "adain", "--decoder", "d.pth", "--steps", "5"], "--steps applies to --method optimize"),
    (["--alpha", "0.5"], "--alpha applies to --method adain"),
    (["--method", "adain", "--decoder", "d.pth", "--alpha", "1.5"], "1.5"),
    (["--method", "adain", "--decoder", "d.pth", "--preserve-color", "corall"], "corall"),
    (["--mask", "{white}"], "exactly two styles"),
    (["--method", "adain", "--decoder", "d.pth", "--mask", "{white}"], "exactly two styles"),
    (["--method", "adain", "--decoder", "d.pth", "--style-blend", "1,2"], "2 style interpolation weights for 1"),
    (["--method", "adain", "--decoder", "d.pth", "--content-size", "8"], "--content-size"),
])
def test_bad_adain_flags_are_usage_errors(tmp_path, files, flags, needle):
    content, style_a, style_b, white = files
    out = tmp_path / "o.png"
    result = run("stylize", content, style_a, "-o", out, "--weights", "random", *[f.format(white=white) for f in flags])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_decoder_problems_are_reported(tmp_path, nets, files):
    content, style_a, style_b, white = files
    vgg, decoder = nets
    wrong = run("stylize", content, style_a, "-o", tmp_path / "o.png", "--method", "adain", "--weights", vgg,
                "--decoder", vgg, "--no-progress")
    assert wrong.exit_code == 1 and wrong.output.count("error:") == 1 and "decoder.pth" in wrong.output
    mismatched = run("stylize", content, style_a, "-o", tmp_path / "m.png", "--method", "adain", "--weights", "random:3",
                     "--decoder", decoder, "--content-size", 0, "--style-size", 0, "--no-progress")
    assert mismatched.exit_code == 0, mismatched.output
    assert "warning: this decoder was trained with encoder" in mismatched.output


FAST_OPTIMIZE = ["--size", "32", "--steps", "4", "--no-progress", "--style-layers", "relu1_1,relu2_1",
                 "--content-layers", "relu2_2"]


def test_optimize_mask_composites_two_runs_and_luminance_keeps_chroma(tmp_path, nets, files):
    content, style_a, style_b, white = files
    flags = ["--weights", nets[0], "--preserve-color", "luminance", *FAST_OPTIMIZE]
    masked, single = tmp_path / "masked.png", tmp_path / "single.png"
    result = run("stylize", content, style_a, style_b, "--mask", white, "-o", masked, *flags)
    assert result.exit_code == 0, result.output
    assert run("stylize", content, style_a, "-o", single, *flags).exit_code == 0
    assert np.array_equal(pixels(masked), pixels(single))  # white: the first style's run everywhere
    metadata = read_metadata(masked)
    assert metadata["mask"] == str(white) and metadata["preserve_color"] == "luminance"
    # the result's chroma (YIQ's I, Q) is the content's, resized to the output, up to 8-bit rounding
    out = load_image(single)
    reference = resize_to(load_image(content), *out.shape[-2:])
    assert (color.rgb_to_yiq(out)[1:] - color.rgb_to_yiq(reference)[1:]).abs().max() < 2 / 255
    plain = tmp_path / "plain.png"
    assert run("stylize", content, style_a, "-o", plain, "--weights", nets[0], *FAST_OPTIMIZE).exit_code == 0
    assert (color.rgb_to_yiq(load_image(plain))[1:] - color.rgb_to_yiq(reference)[1:]).abs().max() > 4 / 255
