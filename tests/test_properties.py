"""Property-based tests (hypothesis) for the image loader and the list-flag parsers."""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from styletransfer.errors import ImageError, UsageError
from styletransfer.imageio import load_image
from styletransfer.parsing import parse_float_list, parse_int_list, parse_loss_list, parse_loss_params

MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I;16", "I", "F"]
FORMATS = {"png": "PNG", "tif": "TIFF", "bmp": "BMP", "gif": "GIF", "webp": "WEBP", "jpg": "JPEG"}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(width=st.integers(1, 32), height=st.integers(1, 32), mode=st.sampled_from(MODES),
       extension=st.sampled_from(sorted(FORMATS)), seed=st.integers(0, 2**16))
def test_loader_reads_any_mode_and_size(width, height, mode, extension, seed):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB").convert(mode)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=FORMATS[extension])
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write this mode in this format: nothing to read back
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"image.{extension}"
        path.write_bytes(buffer.getvalue())
        tensor = load_image(path)
    assert tuple(tensor.shape) == (3, height, width)
    assert tensor.dtype.is_floating_point and tensor.min() >= 0 and tensor.max() <= 1


@SETTINGS
@given(width=st.integers(1, 30), height=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_loader_is_exact_for_rgb_png(width, height, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.png"
        Image.fromarray(pixels, "RGB").save(path)
        tensor = load_image(path)
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy(), pixels / 255.0, atol=1e-7)


@SETTINGS
@given(data=st.binary(min_size=0, max_size=600), extension=st.sampled_from(sorted(FORMATS)),
       prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"II*\x00"]))
def test_loader_on_arbitrary_bytes_reads_or_raises_image_error(data, extension, prefix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x.{extension}"
        path.write_bytes(prefix + data)
        try:
            tensor = load_image(path)
        except ImageError as error:
            assert "\n" not in str(error) and "x." in str(error)
        else:
            assert tensor.shape[0] == 3


finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@SETTINGS
@given(values=st.lists(finite, min_size=1, max_size=6))
def test_float_list_round_trips(values):
    text = ",".join(repr(v) for v in values)
    assert parse_float_list(text, minimum=0.0) == tuple(values)


@SETTINGS
@given(text=st.text(max_size=30))
def test_list_parsers_return_or_raise_usage_error(text):
    for parser in (parse_float_list, parse_int_list):
        try:
            values = parser(text)
        except UsageError as error:
            assert "\n" not in str(error)
        else:
            assert all(math.isfinite(v) for v in values)
    try:
        losses = parse_loss_list(text)
    except UsageError:
        pass
    else:
        assert all(name and weight >= 0 for name, weight in losses)
    try:
        parse_loss_params((text,))
    except UsageError:
        pass


@SETTINGS
@given(weights=st.lists(st.tuples(st.sampled_from(["gram", "bn-stats", "mmd-rbf"]), finite), min_size=1, max_size=4))
def test_loss_list_sums_repeated_names(weights):
    text = ",".join(f"{name}:{weight!r}" for name, weight in weights)
    parsed = dict(parse_loss_list(text))
    for name in {n for n, _ in weights}:
        assert parsed[name] == pytest.approx(sum(w for n, w in weights if n == name))


@pytest.mark.parametrize("text", ["", "a,", ",1", "1,,2", "nan", "inf", "-1", "1e999", "0x10"])
def test_malformed_float_lists(text):
    with pytest.raises(UsageError):
        parse_float_list(text, minimum=0.0)
