"""WCT (Li et al. 2017): the formulas against a brute-force computation and their identities, the
stylizer on a tiny random model, and ``stylize --method wct`` end to end (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_image
from PIL import Image

from styletransfer.adain import adain_affine, save_decoder
from styletransfer.cli import main
from styletransfer.errors import UsageError
from styletransfer.imageio import load_image, read_metadata
from styletransfer.losses.functional import channel_covariance, channel_mean, channel_std, mean_cov_loss
from styletransfer.wct import (
    WCT_EPS,
    WCTConfig,
    WCTStatistics,
    WCTStylizer,
    feature_moments,
    masked_wct,
    mix_statistics,
    wct,
    wct_affine,
    whiten,
)
from tests.helpers.adain_helpers import ODD, calibrated_model, odd_images, seeded_decoder


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_module():
    """One intra-op thread (as conftest's ``one_thread``) for the module's fixtures too: on tiny
    tensors more threads only add contention, which made a 512×512 eigh take seconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


CHANNELS = 8  # the formula tests' feature vectors


def correlated_features(generator: torch.Generator, positions: int, offset: float = 0.0) -> torch.Tensor:
    """(1, C, M) float64 features with correlated channels and a non-zero mean: independent
    components of std 0.5 … 3, rotated at random (so the smallest variance stays ≫ WCT_EPS)."""
    rotation, _ = torch.linalg.qr(torch.randn(CHANNELS, CHANNELS, generator=generator, dtype=torch.float64))
    scales = torch.linspace(0.5, 3.0, CHANNELS, dtype=torch.float64).view(CHANNELS, 1)
    return (rotation @ (scales * torch.randn(CHANNELS, positions, generator=generator, dtype=torch.float64)))[None] + offset


def brute_force_wct(content: np.ndarray, style: np.ndarray, alpha: float, eps: float = WCT_EPS) -> np.ndarray:
    """The paper's steps one by one in numpy float64, for (C, M) content and (C, M') style features."""
    def eig(features):
        mean = features.mean(axis=1, keepdims=True)
        centred = features - mean
        values, vectors = np.linalg.eigh(centred @ centred.T / features.shape[1] + eps * np.eye(len(features)))
        return mean, np.maximum(values, eps), vectors

    mean_c, values_c, vectors_c = eig(content)
    mean_s, values_s, vectors_s = eig(style)
    whitened = vectors_c @ np.diag(values_c ** -0.5) @ vectors_c.T @ (content - mean_c)
    coloured = vectors_s @ np.diag(values_s ** 0.5) @ vectors_s.T @ whitened + mean_s
    return alpha * coloured + (1 - alpha) * content


# --- the formulas --------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_wct_matches_a_brute_force_float64_computation(rng, alpha):
    content, style = correlated_features(rng, 200, 2.0), correlated_features(rng, 90, -1.0)
    expected = brute_force_wct(content[0].numpy(), style[0].numpy(), alpha)
    result = wct(content, *feature_moments(style), alpha=alpha)
    np.testing.assert_allclose(result[0].numpy(), expected, rtol=1e-9, atol=1e-9)


def test_after_wct_the_features_have_the_styles_mean_and_covariance(rng):
    """Content and style of different sizes, (N, C, H, W) float32 features as the stylizer has."""
    content = correlated_features(rng, 24 * 17, 3.0).view(1, CHANNELS, 24, 17).float()
    style = correlated_features(rng, 11 * 13, -1.0).view(1, CHANNELS, 11, 13).float()
    style_mean, style_cov = feature_moments(style)
    exact = wct(content, style_mean, style_cov, eps=1e-12)  # the identity itself, up to float32 rounding
    assert exact.shape == content.shape and exact.dtype == torch.float32
    torch.testing.assert_close(channel_mean(exact.double()), style_mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(channel_covariance(exact.double()), style_cov, rtol=1e-5, atol=1e-5)
    assert float(mean_cov_loss(exact.double(), style.double())) < 1e-9  # WCT zeroes the mean-cov loss
    # with the default eps a content direction of variance λ is whitened to λ/(λ + eps), so the
    # covariance is off by about eps/λ_min(Σ_c)·λ_max(Σ_s): here under 1e-3
    result = wct(content, style_mean, style_cov)
    torch.testing.assert_close(channel_mean(result.double()), style_mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(channel_covariance(result.double()), style_cov, rtol=0, atol=1e-3)


def test_whitening_gives_zero_mean_and_identity_covariance(rng):
    whitened = whiten(correlated_features(rng, 300, 5.0))
    torch.testing.assert_close(channel_mean(whitened), torch.zeros(1, CHANNELS, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    # λ/(λ + eps) on the diagonal: identity up to eps relative to the smallest variance
    torch.testing.assert_close(channel_covariance(whitened), torch.eye(CHANNELS, dtype=torch.float64)[None],
                               rtol=0, atol=1e-3)


def test_alpha_zero_is_the_content_exactly_and_alpha_blends_linearly(rng):
    content = correlated_features(rng, 150, 1.0).float()
    stats = feature_moments(correlated_features(rng, 80))
    assert torch.equal(wct(content, *stats, alpha=0.0), content)
    full = wct(content, *stats, alpha=1.0)
    for alpha in (0.25, 0.7):
        torch.testing.assert_close(wct(content, *stats, alpha=alpha), alpha * full + (1 - alpha) * content,
                                   rtol=1e-5, atol=1e-5)


def decorrelated_features(generator: torch.Generator, positions: int) -> torch.Tensor:
    """(1, C, M) float64 features whose biased covariance is exactly diagonal: orthonormal centred
    rows (a QR of centred noise), scaled per channel and shifted."""
    noise = torch.randn(positions, CHANNELS, generator=generator, dtype=torch.float64)
    rows, _ = torch.linalg.qr(noise - noise.mean(dim=0))  # (M, C): orthonormal, each summing to 0
    stds = torch.rand(CHANNELS, 1, generator=generator, dtype=torch.float64) * 3 + 0.1
    means = torch.randn(CHANNELS, 1, generator=generator, dtype=torch.float64)
    return (stds * rows.T * positions ** 0.5 + means)[None]


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_with_diagonal_covariances_wct_is_adain_with_the_biased_std(rng, alpha):
    """The hand check that WCT is to mean-cov what AdaIN is to bn-stats: when neither image's
    channels are correlated, whitening and colouring is per-channel normalisation with
    σ = √(biased variance + eps), i.e. AdaIN with bn-stats' (biased) σ."""
    content, style = decorrelated_features(rng, 120), decorrelated_features(rng, 70)
    content_mean, content_cov = feature_moments(content)
    style_mean, style_cov = feature_moments(style)
    off_diagonal = ~torch.eye(CHANNELS, dtype=torch.bool)
    assert content_cov[0][off_diagonal].abs().max() < 1e-12 and style_cov[0][off_diagonal].abs().max() < 1e-12
    content_std = channel_std(content, eps=WCT_EPS)  # biased (REFERENCE.md), as bn-stats uses
    style_std = channel_std(style, eps=WCT_EPS)
    scale, shift = adain_affine(content_mean, content_std, style_mean, style_std, alpha)  # (1, C) each
    matrix, vector = wct_affine(content_mean, content_cov, style_mean, style_cov, alpha)
    torch.testing.assert_close(matrix[0], torch.diag(scale[0]), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(vector, shift, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(wct(content, style_mean, style_cov, alpha),
                               content * scale[..., None] + shift[..., None], rtol=1e-10, atol=1e-10)


def random_statistics(generator: torch.Generator, offset: float = 0.0) -> WCTStatistics:
    return WCTStatistics(*feature_moments(correlated_features(generator, 60, offset)))


def test_mixing_styles_averages_means_and_covariances_with_normalised_weights(rng):
    styles = [random_statistics(rng, offset) for offset in (-1.0, 0.0, 2.0)]
    mixed = mix_statistics(styles, (1.0, 2.0, 5.0))
    torch.testing.assert_close(mixed.mean, (styles[0].mean + 2 * styles[1].mean + 5 * styles[2].mean) / 8)
    torch.testing.assert_close(mixed.covariance,
                               (styles[0].covariance + 2 * styles[1].covariance + 5 * styles[2].covariance) / 8)
    assert mix_statistics(styles[:1]) is styles[0]
    with pytest.raises(UsageError, match="2 style interpolation weights for 3 styles"):
        mix_statistics(styles, (1.0, 2.0))


def test_masked_wct_gives_each_region_its_own_styles_statistics(rng):
    features = correlated_features(rng, 14 * 15, 1.0).view(1, CHANNELS, 14, 15)
    foreground = torch.zeros(14, 15, dtype=torch.bool)
    foreground[:, :7] = True
    fg, bg = random_statistics(rng, -2.0), random_statistics(rng, 3.0)
    result = masked_wct(features, foreground, fg, bg)
    for selected, style in ((foreground, fg), (~foreground, bg)):
        region = result[:, :, selected]  # (1, C, K)
        torch.testing.assert_close(channel_mean(region), style.mean, rtol=0, atol=1e-8)
        torch.testing.assert_close(channel_covariance(region), style.covariance, rtol=1e-4, atol=1e-4)
    everywhere = torch.ones(14, 15, dtype=torch.bool)
    assert torch.equal(masked_wct(features, everywhere, fg, bg), wct(features, fg.mean, fg.covariance))


# --- the stylizer --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(encoder):
    """``random_encoder(0)`` and a seeded decoder calibrated on the method's own targets."""
    return calibrated_model(encoder, lambda f, s: wct(f, *feature_moments(s)))


def stylizer(model, **config) -> WCTStylizer:
    return WCTStylizer(model, WCTConfig(**{"content_size": 0, "style_size": 0, **config}))


@pytest.fixture
def images(rng):
    return odd_images(rng)


def test_the_stylizer_keeps_the_contents_exact_size(model, images):
    content, (style, _) = images
    output = stylizer(model).stylize(content, [style])
    assert output.shape == (3, *ODD) and output.dtype == torch.float32
    assert 0 <= float(output.min()) and float(output.max()) <= 1 and float(output.std()) > 0.01
    assert stylizer(model, content_size=20).stylize(content, [style]).shape == (3, 20, 27)  # shorter side 20


def test_precomputed_statistics_give_the_same_image(model, images):
    content, (style, _) = images
    wct_stylizer = stylizer(model)
    stats = wct_stylizer.style_statistics(style)
    assert stats.mean.shape == (1, 512) and stats.covariance.shape == (1, 512, 512)
    assert stats.covariance.dtype == torch.float64
    assert torch.equal(wct_stylizer.stylize(content, [stats]), wct_stylizer.stylize(content, [style]))


def test_two_styles_are_mixed_with_their_weights(model, images):
    content, (style_a, style_b) = images
    wct_stylizer = stylizer(model, style_weights=(1.0, 3.0))
    a, b = wct_stylizer.style_statistics(style_a), wct_stylizer.style_statistics(style_b)
    by_hand = WCTStatistics((a.mean + 3 * b.mean) / 4, (a.covariance + 3 * b.covariance) / 4)
    torch.testing.assert_close(wct_stylizer.stylize(content, [style_a, style_b]),
                               stylizer(model).stylize(content, [by_hand]), rtol=0, atol=1e-5)
    only_a = stylizer(model, style_weights=(1.0, 0.0)).stylize(content, [a, b])
    assert torch.equal(only_a, stylizer(model).stylize(content, [a]))
    assert not torch.allclose(only_a, stylizer(model, style_weights=(0.0, 1.0)).stylize(content, [a, b]), atol=1e-3)


def test_an_all_white_mask_equals_the_first_style_alone_and_a_mask_needs_two_styles(model, images):
    content, (style_a, style_b) = images
    wct_stylizer = stylizer(model)
    white = torch.ones(1, 5, 9)
    assert torch.equal(wct_stylizer.stylize(content, [style_a, style_b], mask=white),
                       wct_stylizer.stylize(content, [style_a]))
    half = torch.zeros(1, *ODD)
    half[..., :18] = 1.0
    assert wct_stylizer.stylize(content, [style_a, style_b], mask=half).shape == (3, *ODD)
    for styles in ([style_a], [style_a, style_b, style_a]):
        with pytest.raises(UsageError, match="exactly two styles"):
            wct_stylizer.stylize(content, styles, mask=white)
    with pytest.raises(UsageError, match="drop --style-blend"):
        stylizer(model, style_weights=(1.0, 1.0)).stylize(content, [style_a, style_b], mask=white)


# --- the command line ----------------------------------------------------------------------------

CONTENT_SIZE = (67, 45)  # (width, height): odd, not a multiple of 8


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def decoder_file(tmp_path_factory, encoder):
    """Our decoder file, recorded as trained with ``--weights random`` (random:0), calibrated on
    WCT targets of images like the tests' own."""
    folder = tmp_path_factory.mktemp("wct_decoder")
    content, style = (load_image(write_image(folder / f"{i}.png", *size, seed=i)).unsqueeze(0)
                      for i, size in ((1, CONTENT_SIZE), (2, (40, 32))))
    with torch.no_grad():
        features = encoder(content[..., :40, :64], ["relu4_1"])["relu4_1"]
        target = wct(features, *feature_moments(encoder(style, ["relu4_1"])["relu4_1"]))
    return save_decoder(seeded_decoder(7, torch.cat([features, target])), folder / "d.safetensors",
                        {"encoder": {"source": "random:0"}})


@pytest.fixture
def files(tmp_path):
    return (write_image(tmp_path / "c.png", *CONTENT_SIZE, seed=1), write_image(tmp_path / "s.png", 40, 32, seed=2))


def test_stylize_method_wct_writes_an_image_of_the_contents_size(tmp_path, decoder_file, files):
    content, style = files
    out = tmp_path / "out.png"
    result = run("stylize", content, style, "-o", out, "--method", "wct", "--decoder", decoder_file,
                 "--weights", "random", "--content-size", 0, "--style-size", 0, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "trained with encoder" not in result.output  # the decoder records this encoder
    assert Image.open(out).size == CONTENT_SIZE
    metadata = read_metadata(out)
    assert metadata["method"] == "wct" and metadata["config"]["alpha"] == 1.0
    assert metadata["decoder"]["file"] == str(decoder_file)
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.std() > 10  # a picture, not a blank


@pytest.mark.parametrize("flags,needle", [
    (["--method", "wct"], "--method wct needs --decoder"),
    (["--method", "wct", "--decoder", "d.pth", "--tile-size", "64"], "--tile-size applies to --method adain and magenta"),
    (["--method", "wct", "--decoder", "d.pth", "--tile-halo", "8"], "--tile-halo applies to --method adain only"),
    (["--method", "wct", "--decoder", "d.pth", "--steps", "5"], "--steps applies to --method optimize"),
    (["--method", "wct", "--decoder", "d.pth", "--alpha", "1.5"], "1.5"),
])
def test_bad_wct_flags_are_one_line_usage_errors(tmp_path, files, flags, needle):
    content, style = files
    out = tmp_path / "o.png"
    result = run("stylize", content, style, "-o", out, "--weights", "random", *flags)
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    if needle.startswith("--"):  # ours, not click's parser: one line
        assert result.output.strip().count("\n") == 0 and result.output.startswith("error: ")
    assert not out.exists()


def test_stylize_help_lists_wct():
    result = run("stylize", "--help")
    assert result.exit_code == 0
    assert "wct" in result.output and "Li et al." in result.output
