"""Image reading and writing: sizes, metadata, atomic writes and clear write errors."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from PIL import Image

from styletransfer import files
from styletransfer.errors import ImageError, UsageError
from styletransfer.imageio import load_image, read_metadata, resize_edge, save_image, scaled_size


def test_scaled_size_keeps_aspect():
    assert scaled_size(300, 451, 128) == (85, 128)
    assert scaled_size(300, 451, 128, edge="short") == (128, 192)
    assert resize_edge(torch.rand(3, 30, 60), 20).shape == (3, 10, 20)
    assert resize_edge(torch.rand(3, 30, 60), 0).shape == (3, 30, 60)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tif"])
def test_round_trip_and_metadata(tmp_path, suffix):
    image = torch.rand(3, 20, 30)
    path = save_image(image, tmp_path / "deep" / "folder" / f"out{suffix}", metadata={"seed": 3})
    loaded = load_image(path)
    assert loaded.shape == (3, 20, 30)
    if suffix in (".png", ".bmp", ".tif"):
        assert (loaded - image).abs().max() <= 0.5 / 255 + 1e-6
    if suffix in (".png", ".jpg"):
        assert read_metadata(path) == {"seed": 3}


def test_unknown_extension_and_folder_outputs_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="extension"):
        save_image(torch.rand(3, 4, 4), tmp_path / "out.txt")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(UsageError, match="folder"):
        save_image(torch.rand(3, 4, 4), tmp_path / "dir.png")


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    save_image(torch.zeros(3, 8, 8), path)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(ImageError, match="No space left") as info:
        save_image(torch.ones(3, 8, 8), path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_unwritable_target_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageError, match="cannot write"):
        save_image(torch.rand(3, 4, 4), blocker / "out.png")


def test_pixel_limit_is_overridable(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 50)).save(path)
    with pytest.raises(ImageError, match="--max-pixels 5000"):
        load_image(path, max_pixels=4999)
    assert load_image(path, max_pixels=5000).shape == (3, 50, 100)


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_image(torch.rand(3, 4, 4), tmp_path / "out.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
