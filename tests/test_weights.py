"""Weight sources: torchvision's cache, offline failures, and refusing unsafe or foreign files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import random_encoder

from styletransfer.encoder import VGG19_CONVS, VGG19_LAYERS, layer_channels
from styletransfer.errors import WeightsError
from styletransfer.weights import load_encoder, load_state_file
from tests.helpers.reference_nets import pytorch_adain_decoder


def vgg19_features_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-layout state dict with the right keys and shapes and random values."""
    return {k: v.clone() for k, v in random_encoder(seed).torchvision_state_dict().items()}


def test_imagenet_without_network_or_cache_is_one_clear_error(monkeypatch):
    import torch.hub

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as info:
        load_encoder("imagenet", progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert os.environ["TORCH_HOME"] in message and "--weights" in message


def test_imagenet_loads_from_the_torch_hub_cache(monkeypatch):
    """torchvision's own loader finds a file in the cache and does not download."""
    import torch.hub

    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    state = vgg19_features_state(seed=7)
    torch.save(state, checkpoints / "vgg19-dcbb9e9d.pth")
    encoder = load_encoder("imagenet", progress=False)
    assert encoder.spec.source == "imagenet"
    assert torch.equal(encoder.convs["conv5_4"].weight, state[f"features.{VGG19_LAYERS.index('conv5_4')}.weight"])


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_pickle_that_runs_code_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _Exploit()}, path)
    with pytest.raises(WeightsError, match="refused"):
        load_encoder(str(path))
    assert not (tmp_path / "pwned-by-pickle").exists()
    with open(path, "rb") as handle:  # the file really is armed: plain pickle would run it
        assert b"system" in handle.read()


def test_decoder_file_given_as_encoder_names_expected_layouts(tmp_path):
    path = tmp_path / "decoder.pth"
    torch.save(pytorch_adain_decoder().state_dict(), path)
    with pytest.raises(WeightsError, match="vgg_normalised.pth") as info:
        load_encoder(str(path))
    assert "features.N.weight" in str(info.value)


def test_wrong_shapes_are_reported(tmp_path):
    state = vgg19_features_state()
    state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
    path = tmp_path / "narrow.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"features\.0\.weight has shape \(32, 3, 3, 3\)"):
        load_encoder(str(path))


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(vgg19_features_state(), path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="truncated"):
        load_state_file(truncated)
    with pytest.raises(WeightsError, match="does not exist"):
        load_encoder(str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match="folder"):
        load_encoder(str(tmp_path))


def test_partial_torchvision_file_builds_a_shorter_encoder(tmp_path):
    state = {k: v for k, v in vgg19_features_state().items() if int(k.split(".")[1]) <= VGG19_LAYERS.index("conv3_1")}
    path = tmp_path / "short.pth"
    torch.save(state, path)
    encoder = load_encoder(str(path))
    assert encoder.spec.last_layer == "relu3_1"
    out = encoder(torch.rand(1, 3, 32, 32), ["relu3_1"])
    assert out["relu3_1"].shape[1] == layer_channels("relu3_1")
    assert len(encoder.convs) == VGG19_CONVS.index("conv3_1") + 1


def test_encoder_sources_are_a_registry_of_names_with_arguments():
    from styletransfer.errors import UsageError
    from styletransfer.weights import ENCODER_SOURCES, load_encoder

    assert ENCODER_SOURCES.names() == ["vgg19", "imagenet", "magenta", "random"]
    with pytest.raises(UsageError, match="imagenet takes no argument"):
        load_encoder("imagenet:v2")  # refused before any download is tried
    with pytest.raises(UsageError, match="must be a whole number"):
        load_encoder("random:x")
    with pytest.raises(WeightsError, match="does not exist"):
        load_encoder("no-such-scheme:file.pth")  # not a registered name: a path
