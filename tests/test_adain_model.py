"""The AdaIN operation and decoder against pytorch-AdaIN's formulas and layout."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from styletransfer.adain import Decoder, adain, load_decoder, mean_std, save_decoder
from styletransfer.errors import WeightsError
from styletransfer.norms import NORMS
from tests.helpers.reference_nets import adain_mean_std, pytorch_adain_decoder, randomize_


def test_mean_std_matches_pytorch_adain():
    x = torch.randn(2, 5, 7, 3)
    ours, theirs = mean_std(x), adain_mean_std(x)
    torch.testing.assert_close(ours[0], theirs[0])
    torch.testing.assert_close(ours[1], theirs[1])


def test_adain_transfers_statistics():
    content = torch.randn(2, 4, 8, 8) * 3 + 1
    style_mean = torch.randn(2, 4, 1, 1)
    style_std = torch.rand(2, 4, 1, 1) + 0.5
    out = adain(content, style_mean, style_std)
    mean, std = mean_std(out, eps=0.0)
    torch.testing.assert_close(mean, style_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(std, style_std, atol=1e-3, rtol=1e-3)


def test_decoder_with_norm_none_is_pytorch_adain_layout(tmp_path):
    reference = randomize_(pytorch_adain_decoder(), seed=0)
    path = tmp_path / "decoder.pth"
    torch.save(reference.state_dict(), path)
    decoder, config = load_decoder(path)
    assert config == {}
    x = torch.randn(1, 512, 5, 6)
    torch.testing.assert_close(decoder(x), reference(x))


@pytest.mark.parametrize("norm", NORMS.names())
def test_decoder_round_trips_through_safetensors_with_its_norm(tmp_path, norm):
    decoder = Decoder(norm).eval()
    path = save_decoder(decoder, tmp_path / f"{norm}.safetensors", {"encoder": {"source": "random:0"}})
    loaded, config = load_decoder(path)
    assert config["norm"] == norm and loaded.norm == norm
    x = torch.randn(2, 512, 4, 4)
    assert decoder(x).shape == (2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), decoder(x))


def test_encoder_file_given_as_decoder_is_explained(tmp_path):
    torch.save({"0.weight": torch.zeros(3, 3, 1, 1)}, tmp_path / "vgg.pth")
    with pytest.raises(WeightsError, match="decoder.pth"):
        load_decoder(tmp_path / "vgg.pth")


def test_same_weights_compares_by_hash_when_either_side_has_one(encoder):
    spec = encoder.spec  # random:0, no sha256
    assert spec.same_weights({"source": "random:0", "sha256": None})
    assert not spec.same_weights({"source": "random:0", "sha256": "ab"})  # a hash on one side decides
    assert not spec.same_weights({"source": "random:1"})
    hashed = replace(spec, source="a.pth", sha256="ab")
    assert hashed.same_weights({"source": "elsewhere/a.pth", "sha256": "ab"}) and not hashed.same_weights({})
    assert "trained with encoder" in spec.decoder_mismatch({"encoder": {"source": "x", "sha256": "ab"}})


def test_decoder_by_manifest_name_from_the_cache(tmp_path):
    import os
    from pathlib import Path

    cache = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    with pytest.raises(WeightsError, match="weights download adain-decoder"):
        load_decoder("adain-decoder")
    cache.mkdir(parents=True)
    torch.save(randomize_(pytorch_adain_decoder(), seed=1).state_dict(), cache / "decoder.pth")
    decoder, _ = load_decoder("adain-decoder")
    assert decoder.norm == "none"


def test_adain_is_applied_to_images_in_one_place_only():
    """AdaINModel holds the networks; inference goes through AdaINStylizer (it once had a second
    forward pass of its own, which had drifted from the stylizer's)."""
    from torch import nn

    from styletransfer.adain import AdaINModel

    assert AdaINModel.forward is nn.Module.forward
