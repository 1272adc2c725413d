"""A corpus of awkward and broken input images, generated on demand (no binary blobs).

``make_corpus(folder)`` writes every case and returns ``{name: Case}``. ``expect`` is ``"ok"``
for inputs the loader converts (documented in docs/CLI.md, "Limits and errors") and ``"error"`` for
inputs every command must refuse with a one-line message naming the file.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str  # "ok" or "error" for the commands
    note: str = ""
    loads: bool | None = None  # whether load_image itself succeeds (default: expect == "ok")

    @property
    def readable(self) -> bool:
        return self.expect == "ok" if self.loads is None else self.loads


def _gradient(width: int, height: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1), (xs + ys) % 256], -1).astype(np.uint8)


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a huge image, with a tiny compressed body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    body = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def make_corpus(folder: Path) -> dict[str, Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    def save(name: str, image: Image.Image, expect: str = "ok", note: str = "", loads=None, **options) -> None:
        path = folder / name
        image.save(path, **options)
        cases[name] = Case(path, expect, note, loads)

    def raw(name: str, data: bytes, expect: str = "error", note: str = "") -> None:
        path = folder / name
        path.write_bytes(data)
        cases[name] = Case(path, expect, note)

    rgb = Image.fromarray(_gradient(60, 40))
    good_png = io.BytesIO()
    rgb.save(good_png, format="PNG")
    good_jpg = io.BytesIO()
    rgb.save(good_jpg, format="JPEG")

    # broken files
    raw("zero_byte.png", b"", note="empty file")
    raw("truncated.png", good_png.getvalue()[: len(good_png.getvalue()) // 2], note="cut in half")
    raw("truncated.jpg", good_jpg.getvalue()[: len(good_jpg.getvalue()) // 2], note="cut in half")
    raw("corrupt.png", good_png.getvalue()[:40] + bytes(range(256)) * 4, note="garbage after the header")
    raw("text_named.jpg", b"this is not an image\n" * 20, note="text file with an image extension")
    raw("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', note="unsupported format")
    raw("bomb.png", _png_header_only(9000, 9000), note="81 megapixels, over the default limit")

    # conversions
    save("gray.png", rgb.convert("L"))
    save("one_bit.png", rgb.convert("1"))
    save("palette.png", rgb.convert("P"))
    palette_t = rgb.convert("P")
    palette_t.info["transparency"] = 0
    save("palette_transparent.png", palette_t, transparency=0)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray((_gradient(60, 40)[..., 0])))
    save("rgba.png", rgba, note="alpha composited over white")
    save("gray_alpha.png", rgb.convert("LA"))
    save("cmyk.jpg", rgb.convert("CMYK"))
    save("gray16.png", Image.fromarray((_gradient(60, 40)[..., 0].astype(np.uint16) * 257)), note="16-bit")
    save("float.tif", Image.fromarray(_gradient(60, 40)[..., 1].astype(np.float32) / 255.0, "F"), note="float")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise on display
    save("exif_rotated.jpg", rgb, exif=exif.tobytes(), note="displayed 40x60")
    frames = [Image.new("RGB", (60, 40), (200, 30, 30)), Image.new("RGB", (60, 40), (30, 30, 200))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    cases["animated.gif"] = Case(folder / "animated.gif", "ok", "first frame")
    frames[0].save(folder / "animated.webp", save_all=True, append_images=frames[1:], duration=100)
    cases["animated.webp"] = Case(folder / "animated.webp", "ok", "first frame")
    save("tiny_4x4.png", rgb.resize((4, 4)), note="upscaled to --size")
    save("strip_300x10.png", Image.fromarray(_gradient(300, 10)), expect="error", loads=True,
         note="30:1 loads, but at --size 32 it is 1 px high: too small for the network")
    save("extreme_1000x2.png", Image.fromarray(_gradient(1000, 2)), expect="error",
         note="500:1, beyond the 32:1 aspect limit")

    # paths
    spaced = folder / "with space ü 名前"
    spaced.mkdir(exist_ok=True)
    rgb.save(spaced / "photo é.png")
    cases["non_ascii_path"] = Case(spaced / "photo é.png", "ok", "spaces and non-ASCII characters")
    cases["directory"] = Case(spaced, "error", "a folder given as a file")
    cases["missing"] = Case(folder / "does_not_exist.png", "error", "no such file")
    return cases
