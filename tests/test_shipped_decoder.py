"""The decoder shipped for the default encoder: --method adain / wct need no --decoder with it."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from conftest import write_image
from PIL import Image

from styletransfer.adain import decoder as D
from styletransfer.adain.decoder import save_decoder
from styletransfer.cli import main
from styletransfer.original_vgg import SHA256
from tests.helpers.adain_helpers import seeded_decoder


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A stand-in for the shipped file: a seeded decoder recorded as trained on the original VGG19."""
    path = tmp_path / "adain_vgg19.safetensors"
    save_decoder(seeded_decoder(0, torch.rand(1, 512, 4, 4)), path, {"encoder": {"source": "vgg19", "sha256": SHA256}})
    monkeypatch.setitem(D.SHIPPED_DECODERS, "vgg19", path)
    return path


def test_default_decoder_is_the_default_encoders_only(shipped, tmp_path):
    assert D.default_decoder("vgg19") == shipped
    assert D.default_decoder("imagenet") is None and D.default_decoder("random:0") is None
    D.SHIPPED_DECODERS["vgg19"] = tmp_path / "missing.safetensors"
    assert D.default_decoder("vgg19") is None  # a package installed without the file: no default


@pytest.mark.parametrize("method", ["adain", "wct"])
def test_stylize_without_decoder_uses_the_shipped_one(shipped, tmp_path, method):
    content = write_image(tmp_path / "c.png", 45, 37, seed=1)
    style = write_image(tmp_path / "s.png", 40, 40, seed=2)
    out, explicit = tmp_path / "out.png", tmp_path / "explicit.png"
    runner = CliRunner()
    common = [str(content), str(style), "--method", method, "--content-size", "0", "--style-size", "0",
              "--no-progress"]
    result = runner.invoke(main, ["stylize", *common, "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["stylize", *common, "-o", str(explicit), "--decoder", str(shipped)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (45, 37)
    assert Image.open(out).tobytes() == Image.open(explicit).tobytes()


def test_another_encoder_still_needs_a_decoder(shipped, tmp_path):
    content = write_image(tmp_path / "c.png", 32, 32, seed=1)
    result = CliRunner().invoke(main, ["stylize", str(content), str(content), "-o", str(tmp_path / "o.png"),
                                       "--method", "adain", "--weights", "random:0"])
    assert result.exit_code == 2 and "needs --decoder" in result.output and "--weights vgg19" in result.output
    assert not (tmp_path / "o.png").exists()


# -- the real file ------------------------------------------------------------------------------


REAL = D.SHIPPED_DECODERS["vgg19"]


def test_the_shipped_file_is_in_the_package_and_records_its_training():
    assert REAL.is_file(), f"{REAL} is missing: the package ships its decoder (pyproject package-data)"
    decoder, config = D.load_decoder(REAL)
    assert decoder.norm == "none" and config["encoder"]["source"] == "vgg19" and config["encoder"]["sha256"] == SHA256
    assert config["iterations"] > 1000 and config["training"]["objective"] == "adain"
    assert config["manifest"]["sha256"] and config["init"]["sha256"]  # the data and the first stage it started from
    assert config["command"].startswith("styletransfer train ") and "--init" in config["command"]
    assert set(config["style_layer_weights"]) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1"}


def test_the_shipped_decoder_gives_a_photo_back_and_transfers_a_painting():
    """Trained, not random: alpha 0 reconstructs a sample photo (never in the training data) well
    above a random decoder's ~6 dB, and alpha 1 moves the photo's colour statistics toward the
    painting's."""
    from styletransfer import load_encoder
    from styletransfer.ablate.data import ASSETS
    from styletransfer.adain.decoder import pair_with
    from styletransfer.adain.stylizer import AdaINConfig, AdaINStylizer
    from styletransfer.imageio import load_image, resize_edge

    encoder = load_encoder()
    decoder, config = D.load_decoder(REAL)
    model, warning = pair_with(encoder, decoder, config)
    assert warning is None
    photo = resize_edge(load_image(ASSETS / "content" / "chelsea.jpg"), 256)
    painting = resize_edge(load_image(ASSETS / "style" / "starry_night.jpg"), 256)
    with torch.no_grad():
        back = AdaINStylizer(model, AdaINConfig(alpha=0.0, content_size=0, style_size=0))
        reconstruction = back.stylize(photo, [back.represent_style(photo)])
        psnr = -10 * torch.log10(((reconstruction - photo) ** 2).mean())
        assert psnr > 15, float(psnr)
        painted = AdaINStylizer(model, AdaINConfig(content_size=0, style_size=0))
        output = painted.stylize(photo, [painted.represent_style(painting)])
    mean = lambda image: image.mean(dim=(1, 2))  # noqa: E731
    assert (mean(output) - mean(painting)).abs().sum() < 0.5 * (mean(photo) - mean(painting)).abs().sum()


def test_stylize_dataset_uses_the_shipped_decoder_without_a_flag(shipped, tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "s").mkdir()
    write_image(tmp_path / "c" / "a.png", 40, 32, seed=1)
    write_image(tmp_path / "s" / "b.png", 36, 36, seed=2)
    result = CliRunner().invoke(main, ["stylize-dataset", str(tmp_path / "c"), str(tmp_path / "s"), "-o",
                                       str(tmp_path / "out"), "--method", "adain", "--content-size", "32",
                                       "--style-size", "32", "--workers", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.png").exists()
