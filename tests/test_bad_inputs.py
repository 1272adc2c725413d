"""Every command that reads images, over the corpus of awkward and broken inputs.

Asserted for each: no traceback, the documented exit code, the file named in the message, and
no output written on failure.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from PIL import Image

from styletransfer.cli import main
from styletransfer.errors import ImageError
from styletransfer.imageio import load_image
from tests.helpers.bad_inputs import make_corpus

FAST = ["--weights", "random", "--size", "32", "--steps", "1", "--no-progress",
        "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def case_names():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        return sorted(make_corpus(Path(folder)))


NAMES = case_names()


@pytest.mark.parametrize("name", NAMES)
def test_loader(corpus, name):
    case = corpus[name]
    if case.readable:
        image = load_image(case.path)
        assert image.shape[0] == 3 and image.min() >= 0 and image.max() <= 1
    else:
        with pytest.raises(ImageError) as info:
            load_image(case.path)
        assert "\n" not in str(info.value)


def test_documented_conversions(corpus):
    assert tuple(load_image(corpus["exif_rotated.jpg"].path).shape[1:]) == (60, 40)  # rotated
    first = load_image(corpus["animated.gif"].path)
    assert first[0].mean() > 0.7 and first[2].mean() < 0.2  # the red first frame
    rgba = load_image(corpus["rgba.png"].path)
    assert rgba[:, 0, 0].tolist() == [1.0, 1.0, 1.0]  # alpha 0 → white background
    gray16 = load_image(corpus["gray16.png"].path)
    assert abs(gray16.max().item() - 1.0) < 1e-6
    assert load_image(corpus["bomb.png"].path, max_pixels=None).shape[1:] == (9000, 9000)


def _run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("name", NAMES)
def test_stylize_over_corpus(corpus, tmp_path, name, role):
    case = corpus[name]
    good = corpus["gray.png"].path
    content, style = (case.path, good) if role == "content" else (good, case.path)
    out = tmp_path / "out.png"
    result = _run(["stylize", content, style, "-o", out, *FAST])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if case.expect == "ok":
        assert result.exit_code == 0, result.output
        assert Image.open(out).size[0] == 32 or Image.open(out).size[1] == 32
    else:
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and case.path.name in errors[0]
        assert not out.exists()


# --- the other entry points that read images ---------------------------------------------------


@pytest.fixture(scope="module")
def decoder_file(tmp_path_factory):
    import torch

    from styletransfer.adain import Decoder, save_decoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("decoder") / "decoder.safetensors"
    save_decoder(Decoder(), path, {})
    return path


def _assert_outcome(result, case, written, expect=None):
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if (expect or case.expect) == "ok":
        assert result.exit_code == 0, result.output
        assert written()
    else:
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and case.path.name in errors[0], result.output
        assert not written()


@pytest.mark.parametrize("name", NAMES)
def test_adain_over_corpus(corpus, tmp_path, decoder_file, name):
    case = corpus[name]
    out = tmp_path / "out.png"
    result = _run(["stylize", "--method", "adain", case.path, corpus["gray.png"].path, "-o", out,
                   "--weights", "random", "--decoder", decoder_file, "--content-size", 32, "--style-size", 32])
    # AdaIN sizes the *shorter* side, so a 30:1 strip becomes 960x32 there: a valid input
    _assert_outcome(result, case, out.exists, expect="ok" if name == "strip_300x10.png" else None)


@pytest.mark.parametrize("name", [n for n in NAMES if n in ("zero_byte.png", "bomb.png", "extreme_1000x2.png",
                                                               "strip_300x10.png", "cmyk.jpg", "directory")])
def test_compare_over_corpus(corpus, tmp_path, name):
    case = corpus[name]
    out = tmp_path / "cmp"
    result = _run(["compare", case.path, corpus["gray.png"].path, "-o", out, "--only", "bn-stats",
                   "--weights", "random", "--size", 32, "--steps", 1, "--no-progress",
                   "--style-layers", "relu1_1", "--content-layers", "relu2_1"])
    _assert_outcome(result, case, lambda: (out / "report.json").exists())


def test_train_refuses_a_folder_of_only_unreadable_files(corpus, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    bad.mkdir()
    for case in corpus.values():
        if not case.readable and case.path.is_file():
            shutil.copy(case.path, bad / case.path.name)
    out = tmp_path / "decoder.safetensors"
    result = _run(["train", "--content-dir", bad, "--style-dir", bad, "--out", out, "--weights", "random",
                   "--max-iter", 1, "--batch-size", 1, "--image-size", 32, "--crop-size", 32, "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad" in errors[0], result.output
    assert not out.exists()


def test_symlink_loops_are_one_line_errors_naming_the_file(tmp_path):
    """pathlib's resolve() raises RuntimeError on a loop; every path check must not."""
    loop_a, loop_b = tmp_path / "a.png", tmp_path / "b.png"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    style = tmp_path / "style.png"
    Image.new("RGB", (40, 40), (10, 200, 30)).save(style)
    runner = CliRunner()
    as_content = runner.invoke(main, ["stylize", str(loop_a), str(style), "-o", str(tmp_path / "o.png"), *FAST])
    assert as_content.exit_code == 1 and "Traceback" not in as_content.output
    assert f"'{loop_a}' is a symbolic link to nothing" in as_content.output
    # As the output (or the report), a dangling link is an ordinary path: the link is replaced.
    report_a, report_b = tmp_path / "a.json", tmp_path / "b.json"
    report_a.symlink_to(report_b)
    report_b.symlink_to(report_a)
    as_output = runner.invoke(main, ["stylize", str(style), str(style), "-o", str(loop_a), "--report",
                                     str(report_a), *FAST])
    assert as_output.exit_code == 0, as_output.output
    assert not loop_a.is_symlink() and load_image(loop_a).shape[0] == 3 and loop_b.is_symlink()
    assert not report_a.is_symlink() and report_a.read_text().startswith("{")


def test_a_one_pixel_content_is_stylised(tmp_path):
    """A 1x1 image upscales to a non-contiguous tensor; L-BFGS needs a contiguous parameter."""
    content, style = tmp_path / "one.png", tmp_path / "style.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(content)
    Image.new("RGB", (40, 40), (10, 200, 30)).save(style)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["stylize", str(content), str(style), "-o", str(out), *FAST, "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (3, 32, 32)
