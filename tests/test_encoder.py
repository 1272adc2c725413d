"""The named-layer VGG19 encoder against torchvision's and pytorch-AdaIN's networks."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import random_encoder
from safetensors.torch import save_file

from styletransfer.encoder import VGG19_LAYERS, layer_channels
from styletransfer.errors import UsageError
from styletransfer.weights import ADAIN_CHILDREN, load_encoder
from tests.helpers.reference_nets import pytorch_adain_vgg, randomize_


def test_layer_names_follow_torchvision_indices():
    assert len(VGG19_LAYERS) == 37
    expected = {0: "conv1_1", 1: "relu1_1", 4: "pool1", 20: "relu4_1", 22: "relu4_2", 29: "relu5_1", 36: "pool5"}
    for index, name in expected.items():
        assert VGG19_LAYERS[index] == name
    assert layer_channels("relu3_1") == 256 and layer_channels("pool5") == 512


def test_adain_children_match_reference_keys():
    assert [ADAIN_CHILDREN[n] for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")] == [3, 10, 17, 30]


def test_runs_only_up_to_the_deepest_requested_layer(encoder):
    calls = []
    hook = encoder.convs["conv2_1"].register_forward_hook(lambda *a: calls.append(1))
    try:
        out = encoder(torch.rand(1, 3, 32, 32), ["relu1_1", "conv1_2"])
    finally:
        hook.remove()
    assert set(out) == {"relu1_1", "conv1_2"} and not calls
    assert out["relu1_1"].shape == (1, 64, 32, 32)
    assert (out["conv1_2"] < 0).any()  # the conv output was not clobbered by the in-place ReLU


def test_unknown_layer_is_a_usage_error(encoder):
    with pytest.raises(UsageError, match="did you mean 'relu4_1'"):
        encoder(torch.rand(1, 3, 32, 32), ["relu4-1"])


def test_random_weights_warn_and_are_reproducible():
    with pytest.warns(UserWarning, match="not representative"):
        a = load_encoder("random:5")
    b = random_encoder(5)
    assert torch.equal(a.convs["conv3_1"].weight, b.convs["conv3_1"].weight)
    assert not torch.equal(a.convs["conv3_1"].weight, random_encoder(6).convs["conv3_1"].weight)


@pytest.fixture(scope="module")
def torchvision_vgg19():
    """torchvision's own VGG19 with random features (its classifier keys are kept too)."""
    model = torchvision.models.vgg19(weights=None).eval()
    randomize_(model.features, seed=3)
    return model


@pytest.mark.parametrize("suffix,pooling", [(".pth", "max"), (".safetensors", "max"), (".pth", "avg")])
def test_torchvision_state_dict_reproduces_torchvision_vgg19(tmp_path, torchvision_vgg19, suffix, pooling):
    import copy

    reference = copy.deepcopy(torchvision_vgg19)
    state = reference.state_dict()
    path = tmp_path / f"vgg19{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    encoder = load_encoder(str(path), pooling=pooling)
    assert encoder.spec.metadata["layout"] == "torchvision" and len(encoder.spec.sha256) == 64
    features = reference.features
    if pooling == "avg":
        for i, module in enumerate(features):
            if isinstance(module, torch.nn.MaxPool2d):
                features[i] = torch.nn.AvgPool2d(2, 2)
    image = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    x = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    wanted = ["conv1_1", "relu1_1", "relu2_1", "pool3", "relu4_2", "relu5_1", "pool5"]
    ours = encoder(image, wanted)
    expected = {}
    with torch.no_grad():
        for index, module in enumerate(features):
            x = module(x)
            if VGG19_LAYERS[index] in wanted:
                expected[VGG19_LAYERS[index]] = x.clone()
    for name in wanted:
        torch.testing.assert_close(ours[name], expected[name], rtol=1e-5, atol=1e-5)


def test_adain_layout_reproduces_pytorch_adain_outputs_exactly(tmp_path):
    reference = randomize_(pytorch_adain_vgg(), seed=4).eval()
    path = tmp_path / "vgg_normalised.pth"
    torch.save(reference.state_dict(), path)
    encoder = load_encoder(str(path))
    assert encoder.spec.metadata["layout"] == "adain"
    assert encoder.spec.padding == "reflect" and encoder.spec.ceil_mode and encoder.spec.last_layer == "relu5_4"
    image = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(1))  # odd sizes: ceil mode matters
    ours = encoder(image, ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_4"])
    with torch.no_grad():
        for name, end in (("relu1_1", 4), ("relu2_1", 11), ("relu3_1", 18), ("relu4_1", 31), ("relu5_4", 53)):
            expected = reference[:end](image)
            assert ours[name].shape == expected.shape
            torch.testing.assert_close(ours[name], expected, rtol=1e-5, atol=1e-4)


def test_truncated_adain_encoder_stops_at_relu4_1(tmp_path):
    reference = randomize_(pytorch_adain_vgg()[:31], seed=5)
    path = tmp_path / "vgg_short.pth"
    torch.save(reference.state_dict(), path)
    encoder = load_encoder(str(path))
    assert encoder.spec.last_layer == "relu4_1"
    with pytest.raises(UsageError):
        encoder(torch.rand(1, 3, 32, 32), ["relu5_1"])
