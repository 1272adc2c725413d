"""Colour preservation: statistics after CORAL and histogram matching, exact chroma for luminance."""

from __future__ import annotations

import pytest
import torch

from styletransfer import color
from styletransfer.errors import UsageError


def coloured(generator: torch.Generator, height: int, width: int, mix: tuple) -> torch.Tensor:
    """A (3, H, W) image in [0, 1] with correlated channels (a colour cast given by ``mix``)."""
    base = torch.rand(3, height, width, generator=generator)
    image = torch.einsum("ij,jhw->ihw", torch.tensor(mix), base)
    return (image - image.min()) / (image.max() - image.min())


def colour_stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = image.reshape(3, -1).double()  # (3, M)
    return flat.mean(1), torch.cov(flat)


@pytest.fixture
def pair(rng):
    style = coloured(rng, 40, 50, ((1.0, 0.2, 0.0), (0.5, 0.3, 0.0), (0.0, 0.1, 0.2)))
    content = coloured(rng, 30, 36, ((0.1, 0.0, 0.9), (0.0, 1.0, 0.3), (0.4, 0.4, 0.4)))
    return style, content


def pytorch_adain_coral(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pytorch-AdaIN's coral, restated from its description: standardise, whiten, colour (SVD roots)."""

    def standardised(x):
        flat = x.view(3, -1)
        mean, std = flat.mean(-1, keepdim=True), flat.std(-1, keepdim=True)
        return (flat - mean) / std, mean, std

    def root(m):
        u, d, v = torch.svd(m)
        return u @ torch.diag(d.sqrt()) @ v.t()

    source_n, _, _ = standardised(source)
    target_n, target_mean, target_std = standardised(target)
    source_cov = source_n @ source_n.t() + torch.eye(3)
    target_cov = target_n @ target_n.t() + torch.eye(3)
    out = root(target_cov) @ (torch.inverse(root(source_cov)) @ source_n)
    return (out * target_std + target_mean).view(source.shape)


def test_coral_gives_the_style_the_contents_mean_and_covariance(pair):
    style, content = pair
    result = color.coral(style, content)
    assert result.shape == style.shape and result.dtype == style.dtype
    mean, cov = colour_stats(result)
    content_mean, content_cov = colour_stats(content)
    torch.testing.assert_close(mean, content_mean, atol=1e-6, rtol=0)
    # equal up to the regulariser I/(M − 1), of relative size O(1/M): here M = 1080 and 2000 pixels
    torch.testing.assert_close(cov, content_cov, atol=5e-3 * float(content_cov.abs().max()), rtol=0)
    assert not torch.allclose(colour_stats(style)[1], content_cov, atol=1e-2)  # it had to change


def test_coral_equals_pytorch_adain_for_equal_pixel_counts(pair):
    style, content = pair
    content = content.repeat(1, 2, 2)[:, :50, :40].contiguous()  # 2000 pixels, as many as the style's
    torch.testing.assert_close(color.coral(style, content), pytorch_adain_coral(style, content), atol=1e-5, rtol=0)


def test_coral_does_not_depend_on_the_contents_pixel_count(pair):
    """pytorch-AdaIN's version scales the covariance by M_content/M_style; ours does not."""
    style, content = pair
    larger = content.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # same colours, 4x the pixels
    torch.testing.assert_close(color.coral(style, larger), color.coral(style, content), atol=2e-3, rtol=0)
    theirs = colour_stats(pytorch_adain_coral(style, larger))[1]
    assert not torch.allclose(theirs, colour_stats(content)[1], rtol=0.2)


def test_coral_batches_per_instance(pair, rng):
    style, content = pair
    other = coloured(rng, 40, 50, ((0.3, 0.3, 0.3), (0.0, 1.0, 0.0), (0.2, 0.0, 0.8)))
    batch = color.coral(torch.stack([style, other]), content.unsqueeze(0))
    torch.testing.assert_close(batch[0], color.coral(style, content))
    torch.testing.assert_close(batch[1], color.coral(other, content))


def test_histogram_matching_with_equal_sizes_takes_the_contents_values_exactly(rng):
    style, content = torch.rand(3, 20, 30, generator=rng), torch.rand(3, 24, 25, generator=rng) ** 3
    result = color.histogram(style, content)
    for channel in range(3):
        torch.testing.assert_close(result[channel].flatten().sort().values, content[channel].flatten().sort().values,
                                   atol=0, rtol=0)
        # order preserving: the brightest style pixel stays the brightest
        assert torch.equal(result[channel].flatten().argsort(), style[channel].flatten().argsort())


def test_histogram_matching_quantiles_for_8bit_images_of_other_sizes(rng):
    style = (torch.rand(3, 40, 40, generator=rng) * 255).round() / 255
    content = ((torch.rand(3, 31, 29, generator=rng) ** 2) * 255).round() / 255
    result = color.histogram(style, content)
    levels = torch.linspace(0.05, 0.95, 19)
    for channel in range(3):
        ours = torch.quantile(result[channel].flatten(), levels)
        theirs = torch.quantile(content[channel].flatten(), levels)
        torch.testing.assert_close(ours, theirs, atol=4 / 255, rtol=0)
    # ties stay ties: equal style values map to equal results
    flat_style, flat_result = style[0].flatten(), result[0].flatten()
    same = flat_style == flat_style[0]
    assert int(same.sum()) > 1 and bool((flat_result[same] == flat_result[0]).all())
    torch.testing.assert_close(color.histogram(content, content), content, atol=0, rtol=0)


def test_luminance_keeps_content_chroma_and_output_luma_exactly(pair, rng):
    _, content = pair
    output = torch.rand(content.shape, generator=rng)
    result = color.luminance(output, content)
    result_yiq, output_yiq, content_yiq = (color.rgb_to_yiq(x.double()) for x in (result, output, content))
    torch.testing.assert_close(result_yiq[1:], content_yiq[1:], atol=1e-6, rtol=0)
    torch.testing.assert_close(result_yiq[:1], output_yiq[:1], atol=1e-6, rtol=0)
    torch.testing.assert_close(color.luminance(content, content), content, atol=1e-6, rtol=0)
    # a grey output of the content's own luminance gives back the content
    grey = output_yiq.clone()
    grey[0], grey[1:] = content_yiq[0], 0.0
    torch.testing.assert_close(color.luminance(color.yiq_to_rgb(grey).float(), content), content, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", color.COLOR_TRANSFERS.names())
def test_every_method_keeps_shape_and_applies_at_its_stage_only(pair, name):
    style, content = pair
    method = color.COLOR_TRANSFERS.get(name)
    image = style[:, :30, :36]  # the content's size, so output-stage methods apply as well
    for x, c in ((image, content), (image.unsqueeze(0), content.unsqueeze(0))):
        out = method.function(x, c)
        assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
        assert not torch.allclose(out, x)
    before, after = color.prepare_style(image, content, name), color.finish_output(image, content, name)
    changed = before if method.stage == color.STAGE_STYLE else after
    unchanged = after if method.stage == color.STAGE_STYLE else before
    assert unchanged is image and not torch.allclose(changed, image)


def test_none_and_unknown_names():
    image = torch.rand(3, 4, 4)
    assert color.prepare_style(image, image, "none") is image and color.finish_output(image, image, None) is image
    with pytest.raises(UsageError, match="did you mean 'coral'"):
        color.get("corall")
    assert color.choices()[0] == "none" and set(color.choices()[1:]) == {"coral", "luminance", "histogram"}
