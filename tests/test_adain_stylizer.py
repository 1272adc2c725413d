"""Feed-forward AdaIN stylisation: identities on tiny random models, and pytorch-AdaIN compatibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_image
from PIL import Image

from styletransfer.adain import AdaINModel, adain, load_decoder, mean_std
from styletransfer.adain.regions import StyleStatistics, feature_mask, masked_adain, mix_statistics
from styletransfer.adain.stylizer import AdaINConfig, AdaINStylizer
from styletransfer.cli import main
from styletransfer.encoder import EncoderSpec, VGGEncoder
from styletransfer.errors import UsageError, WeightsError
from styletransfer.realtime import pad_to_multiple
from styletransfer.tiling import FEATURE_STRIDE
from styletransfer.weights import load_encoder
from tests.helpers.adain_helpers import ODD, calibrate_, calibrated_model, odd_images, psnr, pytorch_adain_encoder, seeded_decoder
from tests.helpers.reference_nets import adain_mean_std, pytorch_adain_decoder, randomize_


@pytest.fixture(scope="module")
def model(encoder):
    """``random_encoder(0)`` and a seeded decoder calibrated on the method's own targets."""
    return calibrated_model(encoder, lambda f, s: adain(f, *mean_std(s)))


def stylizer(model, **config) -> AdaINStylizer:
    return AdaINStylizer(model, AdaINConfig(**{"content_size": 0, "style_size": 0, **config}))


@pytest.fixture
def images(rng):
    return odd_images(rng)


def random_stats(rng, channels=8) -> StyleStatistics:
    return StyleStatistics(torch.randn(1, channels, 1, 1, generator=rng),
                           torch.rand(1, channels, 1, 1, generator=rng) + 0.5)


def test_pad_to_multiple_reflects_and_keeps_the_original_corner(rng):
    image = torch.rand(1, 3, *ODD, generator=rng)
    padded = pad_to_multiple(image, FEATURE_STRIDE)
    assert padded.shape[-2:] == (32, 40)
    assert torch.equal(padded[..., :27, :37], image)
    assert torch.equal(padded[..., 27, :37], image[..., 25, :])  # reflection, not replication
    exact = torch.rand(1, 3, 16, 24, generator=rng)
    assert pad_to_multiple(exact, FEATURE_STRIDE) is exact


def test_mixing_statistics_equals_mixing_adain_targets(rng):
    """pytorch-AdaIN decodes Σ w_i·AdaIN(c, s_i); mixing (μ, σ) gives the same target."""
    features = torch.randn(1, 8, 5, 6, generator=rng)
    styles = [random_stats(rng) for _ in range(3)]
    weights = (1.0, 2.0, 5.0)
    mixed = mix_statistics(styles, weights)
    expected = sum(w / 8.0 * adain(features, s.mean, s.std) for w, s in zip(weights, styles))
    torch.testing.assert_close(adain(features, mixed.mean, mixed.std), expected)
    assert mix_statistics(styles[:1]) is styles[0]
    with pytest.raises(UsageError, match="2 style interpolation weights for 3 styles"):
        mix_statistics(styles, (1.0, 2.0))


def test_masked_adain_normalises_each_region_with_its_own_statistics(rng):
    features = torch.randn(1, 8, 6, 7, generator=rng) * 3 + 1
    fg, bg = random_stats(rng), random_stats(rng)
    everywhere = torch.ones(6, 7, dtype=torch.bool)
    # AdaIN is applied as one multiply-add with statistics summed in float64: equal up to rounding
    torch.testing.assert_close(masked_adain(features, everywhere, fg, bg), adain(features, fg.mean, fg.std))
    torch.testing.assert_close(masked_adain(features, ~everywhere, fg, bg), adain(features, bg.mean, bg.std))
    region = torch.zeros(6, 7, dtype=torch.bool)
    region[:, :3] = True
    out = masked_adain(features, region, fg, bg)
    for selected, stats in ((region, fg), (~region, bg)):
        part = out[:, :, selected].unsqueeze(-1)  # (1, C, K, 1)
        mean, std = mean_std(part, eps=0.0)
        torch.testing.assert_close(mean, stats.mean, atol=1e-5, rtol=0)
        torch.testing.assert_close(std, stats.std, atol=1e-3, rtol=1e-3)
    single = torch.zeros(6, 7, dtype=torch.bool)
    single[0, 0] = True  # one position: AdaIN of a single sample is the style mean
    torch.testing.assert_close(masked_adain(features, single, fg, bg)[0, :, 0, 0], fg.mean.flatten())


def test_feature_mask_downsamples_the_padded_mask():
    mask = torch.zeros(1, *ODD)
    mask[:, :, :14] = 1.0  # the left 14 of 37 columns: cells 0 (all white), 1 (6/8 white), 2+ black
    mask[:, 22:, :] = 1.0  # rows 22-26, reflected into rows 27-30: cell row 3 is 7/8 white, row 2 2/8
    cells = feature_mask(mask, (4, 5))
    assert cells.shape == (4, 5)
    assert cells[:, :2].all() and not cells[:3, 2:].any() and cells[3].all()


def test_output_has_exactly_the_content_size(model, images):
    content, styles = images
    out = stylizer(model).stylize(content, styles[:1])
    assert out.shape == (3, *ODD) and out.min() >= 0 and out.max() <= 1
    assert ((out > 0) & (out < 1)).float().mean() > 0.8  # calibrated: a real image, not clipped
    resized = stylizer(model, content_size=19).stylize(content, styles[:1])
    assert resized.shape == (3, 19, 26)  # shorter side 19, not rounded to a multiple of 8
    cropped = stylizer(model, content_size=19, crop=True).stylize(content, styles[:1])
    assert cropped.shape == (3, 19, 19)


def test_alpha_zero_reproduces_decode_encode(model, images):
    content, styles = images
    # the plain layout runs the caller's model itself, so the comparison below is exact
    out = stylizer(model, alpha=0.0, channels_last=False).stylize(content, styles)
    with torch.inference_mode():
        expected = model.decoder(model.encode(pad_to_multiple(content.unsqueeze(0), FEATURE_STRIDE)))[0, :, :ODD[0], :ODD[1]]
    assert torch.equal(out, expected.clamp(0, 1))
    aligned = content[:, :24, :32]  # a multiple of 8: no padding at all
    with torch.inference_mode():
        plain = model.decoder(model.encode(aligned.unsqueeze(0)))[0].clamp(0, 1)
    assert torch.equal(stylizer(model, alpha=0.0, channels_last=False).stylize(aligned, styles), plain)
    assert not torch.allclose(stylizer(model, alpha=1.0).stylize(aligned, styles), plain, atol=1e-2)


def test_precomputed_statistics_are_reused(model, images, monkeypatch):
    content, styles = images
    run = stylizer(model, alpha=0.6, style_weights=(1.0, 3.0))
    stats = [run.style_statistics(s) for s in styles]
    calls = []
    original = AdaINModel.style_statistics
    monkeypatch.setattr(AdaINModel, "style_statistics", lambda self, x: calls.append(1) or original(self, x))
    from_stats = run.stylize(content, stats)
    assert calls == []
    torch.testing.assert_close(from_stats, run.stylize(content, styles), atol=0, rtol=0)
    assert len(calls) == 2


def test_weights_select_a_style_and_mask_splits_the_image(model, images):
    content, styles = images
    run = stylizer(model)
    stats = [run.style_statistics(s) for s in styles]
    single = [run.stylize(content, [s]) for s in stats]
    only_first = stylizer(model, style_weights=(1.0, 0.0)).stylize(content, stats)
    torch.testing.assert_close(only_first, single[0], atol=1e-5, rtol=0)
    white, black = torch.ones(1, 20, 30), torch.zeros(1, 20, 30)  # any size: stretched to the content
    assert torch.equal(run.stylize(content, stats, mask=white), single[0])
    assert torch.equal(run.stylize(content, stats, mask=black), single[1])
    half = torch.cat([torch.ones(3, *ODD)[:, :, :16], torch.zeros(3, *ODD)[:, :, 16:]], dim=2)
    split = run.stylize(content, stats, mask=half)
    assert not torch.allclose(split, single[0], atol=1e-2) and not torch.allclose(split, single[1], atol=1e-2)
    with pytest.raises(UsageError, match="exactly two styles"):
        run.stylize(content, stats[:1], mask=white)


def test_colour_preservation_stages(model, images):
    content, styles = images
    with pytest.raises(UsageError, match="changes the style for each content"):
        stylizer(model, preserve_color="coral").stylize(content, [StyleStatistics(torch.zeros(1), torch.ones(1))])
    plain = stylizer(model).stylize(content, styles[:1])
    for name in ("coral", "histogram", "luminance"):
        out = stylizer(model, preserve_color=name).stylize(content, styles[:1])
        assert out.shape == plain.shape and not torch.allclose(out, plain, atol=1e-3)


def test_config_validation():
    for bad, needle in (({"alpha": 1.5}, "--alpha"), ({"style_weights": (0.0, 0.0)}, "positive sum"),
                        ({"preserve_color": "corall"}, "did you mean 'coral'"), ({"content_size": 8}, "--content-size")):
        with pytest.raises(UsageError, match=needle):
            AdaINConfig(**bad).validate()


def test_decoder_warnings(encoder, pytorch_adain_files):
    mismatch = encoder.spec.decoder_mismatch
    assert mismatch({"norm": "none", "encoder": {"source": "random:0", "sha256": None}}) is None
    assert "trained with encoder" in mismatch({"encoder": {"source": "x.pth", "sha256": "ab"}})
    # pytorch-AdaIN's decoder.pth records nothing: fine with its own vgg_normalised.pth only
    assert "vgg_normalised.pth" in mismatch({})
    assert pytorch_adain_files[-1].encoder.spec.decoder_mismatch({}) is None


def test_encoder_must_reach_relu4_1(images):
    encoder = VGGEncoder(EncoderSpec(last_layer="relu3_1"))
    with pytest.raises(WeightsError, match="relu4_1"):
        AdaINStylizer(AdaINModel(encoder, seeded_decoder(0, torch.randn(1, 512, 2, 2))))


# --- compatibility with pytorch-AdaIN's test.py -------------------------------------------------


def their_adain(content_feat, style_feat):
    """pytorch-AdaIN's adaptive_instance_normalization, restated."""
    size = content_feat.size()
    style_mean, style_std = adain_mean_std(style_feat)
    content_mean, content_std = adain_mean_std(content_feat)
    normalized = (content_feat - content_mean.expand(size)) / content_std.expand(size)
    return normalized * style_std.expand(size) + style_mean.expand(size)


def their_style_transfer(vgg, decoder, content, styles, alpha, weights=None):
    """pytorch-AdaIN's style_transfer (test.py), restated: vgg[:31], AdaIN, alpha, decoder."""
    content_f = vgg(content)
    if weights:
        base = [their_adain(content_f, vgg(style)) for style in styles]
        feat = torch.zeros_like(content_f)
        for w, f in zip(weights, base):
            feat = feat + w * f
    else:
        feat = their_adain(content_f, vgg(styles[0]))
    feat = feat * alpha + content_f * (1 - alpha)
    return decoder(feat)


def their_coral(source, target):
    from test_color import pytorch_adain_coral

    return pytorch_adain_coral(source, target)


def to_tensor(path) -> torch.Tensor:
    """torchvision's ToTensor on an RGB image: uint8 HWC → float CHW / 255."""
    array = np.asarray(Image.open(path).convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255)


def quantise(image: torch.Tensor) -> torch.Tensor:
    """torchvision's save_image: ×255 + 0.5, clamp, to uint8; back to [0, 1]."""
    return image.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).float() / 255


@pytest.fixture(scope="module")
def pytorch_adain_files(tmp_path_factory):
    """vgg_normalised.pth and decoder.pth in pytorch-AdaIN's layout, with seeded random weights."""
    folder = tmp_path_factory.mktemp("pytorch_adain")
    vgg = pytorch_adain_encoder(seed=11)  # all 53 children, as the released file
    content = write_image(folder / "content.png", 48, 32, seed=21)
    styles = [write_image(folder / "style_a.png", 40, 24, seed=22), write_image(folder / "style_b.png", 32, 40, seed=23),
              write_image(folder / "style_c.png", 32, 48, seed=24)]  # style_c: as many pixels as the content
    decoder = randomize_(pytorch_adain_decoder(), seed=12).eval()
    with torch.no_grad():
        content_f = vgg[:31](to_tensor(content).unsqueeze(0))
        targets = [content_f] + [their_adain(content_f, vgg[:31](to_tensor(s).unsqueeze(0))) for s in styles]
        calibrate_(decoder, torch.cat(targets))
    torch.save(vgg.state_dict(), folder / "vgg_normalised.pth")
    torch.save(decoder.state_dict(), folder / "decoder.pth")
    ours = AdaINModel(load_encoder(str(folder / "vgg_normalised.pth")), load_decoder(folder / "decoder.pth")[0])
    return folder, vgg[:31], decoder, content, styles, ours


@pytest.mark.parametrize("case", ["alpha", "interpolation", "coral"])
def test_matches_pytorch_adain_style_transfer(tmp_path, pytorch_adain_files, case):
    folder, vgg, decoder, content, styles, model = pytorch_adain_files
    flags = {"alpha": (["--alpha", "0.7"], [styles[0]], 0.7, None, False),
             "interpolation": (["--style-interpolation-weights", "1,3"], styles[:2], 1.0, [0.25, 0.75], False),
             "coral": (["--preserve-color", "coral"], [styles[2]], 1.0, None, True)}
    extra, used, alpha, weights, coral = flags[case]
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, [str(a) for a in [
        "stylize", content, *used, "-o", out, "--method", "adain", "--weights", folder / "vgg_normalised.pth",
        "--decoder", folder / "decoder.pth", "--content-size", 0, "--style-size", 0, "--no-progress", *extra]],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output  # the decoder.pth + vgg_normalised.pth pair is recognised

    content_t = to_tensor(content).unsqueeze(0)
    style_ts = [to_tensor(s).unsqueeze(0) for s in used]
    with torch.no_grad():
        if coral:
            style_ts = [their_coral(s[0], content_t[0]).unsqueeze(0) for s in style_ts]
        reference = their_style_transfer(vgg, decoder, content_t, style_ts, alpha, weights)[0].clamp(0, 1)
    assert ((reference > 0) & (reference < 1)).float().mean() > 0.8  # a real image, not clipped

    written = to_tensor(out)
    assert written.shape == reference.shape == (3, 32, 48)
    assert psnr(written, quantise(reference)) >= 50.0
    assert psnr(written, reference) >= 50.0

    # before quantisation, through the Python API
    config = AdaINConfig(alpha=alpha, style_weights=(1.0, 3.0) if weights else None,
                         preserve_color="coral" if coral else "none", content_size=0, style_size=0)
    ours = AdaINStylizer(model, config).stylize(content_t[0], [to_tensor(s) for s in used])
    assert psnr(ours, reference) >= 80.0
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)
