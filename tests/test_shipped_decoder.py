"""The decoder shipped for the default encoder: --method adain / wct need no --decoder with it."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from adain_helpers import seeded_decoder
from conftest import write_image
from styletransfer.adain import decoder as D
from styletransfer.adain.decoder import save_decoder
from styletransfer.cli import main
from styletransfer.original_vgg import SHA256


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
