"""Reading, resizing and writing images as float tensors in [0, 1].

Conversions on reading (documented in docs/CLI.md, "Limits and errors"): EXIF orientation is applied;
animated images give their first frame; grayscale, palette and CMYK become RGB; transparency is
composited over white; 16-bit images are scaled by 1/65535 and float images clipped to [0, 1].
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from torch import Tensor

from .errors import ImageError, UsageError
from .files import atomic_write

DEFAULT_MAX_PIXELS = 64_000_000  # refuse larger images unless --max-pixels says otherwise
MIN_SIDE = 16  # smaller images leave too little for VGG's pooling layers
MAX_ASPECT_RATIO = 32  # longer strips are refused: resized to any usable size they become huge
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                  ".tif": "TIFF", ".tiff": "TIFF"}


def _to_array(image: Image.Image) -> np.ndarray:
    """A PIL image of any mode → (H, W, 3) float32 in [0, 1]."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        data = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if mode.startswith("I;16") or data.max(initial=0) > 255 else 255.0
        data = np.clip(data / scale, 0, 1)
        return np.repeat(data[..., None], 3, axis=2).astype(np.float32)
    if mode == "F":
        data = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
        return np.repeat(data[..., None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) / 255.0


def _read(path: Path, name: str, max_pixels: int | None) -> np.ndarray:
    with Image.open(path) as image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageError(
                f"{name!r} is {width}x{height} = {width * height} pixels, above the limit of "
                f"{max_pixels}: pass --max-pixels {width * height} if you trust the file"
            )
        if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
            raise ImageError(
                f"{name!r} is {width}x{height}, an aspect ratio beyond {MAX_ASPECT_RATIO}:1 that no "
                "network size suits: crop it to a less extreme shape first"
            )
        image.seek(0)  # first frame of animations
        return _to_array(ImageOps.exif_transpose(image) or image)


def load_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Tensor:
    """Read an image file as a (3, H, W) float32 tensor in [0, 1]."""
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise ImageError(f"{name!r} is a folder, not an image: pass an image file")
    if not path.exists():
        if path.is_symlink():
            raise ImageError(f"{name!r} is a symbolic link to nothing (broken, or a loop): point it at an image")
        raise ImageError(f"{name!r} does not exist: check the path")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # our own limit below replaces Pillow's
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd EXIF or palettes are not errors
            array = _read(path, name, max_pixels)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name!r} is not an image Pillow can read (corrupt or unsupported format)") from None
    except PermissionError:
        raise ImageError(f"cannot read {name!r}: permission denied") from None
    except Exception as error:  # Pillow's decoders raise many types on malformed files
        raise ImageError(f"cannot decode {name!r}: {str(error)[:120] or type(error).__name__} "
                         "(truncated or corrupt file)") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    height, width = array.shape[:2]
    if min(height, width) < 1:
        raise ImageError(f"{name!r} has no pixels")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()  # (3, H, W)


def _resize(image: Tensor, height: int, width: int) -> Tensor:
    batched = image.unsqueeze(0) if image.dim() == 3 else image
    if (batched.shape[-2], batched.shape[-1]) == (height, width):
        return image
    out = F.interpolate(batched, size=(height, width), mode="bicubic", align_corners=False,
                        antialias=True).clamp_(0, 1)
    return out[0] if image.dim() == 3 else out


def scaled_size(height: int, width: int, size: int, edge: str = "long") -> tuple[int, int]:
    """The (height, width) whose long (or short) edge is ``size``, keeping the aspect ratio."""
    reference = max(height, width) if edge == "long" else min(height, width)
    scale = size / reference
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_edge(image: Tensor, size: int | None, edge: str = "long") -> Tensor:
    """Resize so the long (or short) edge is ``size``; ``None`` or 0 keeps the original size."""
    if not size:
        return image
    return _resize(image, *scaled_size(image.shape[-2], image.shape[-1], size, edge))


def resize_to(image: Tensor, height: int, width: int) -> Tensor:
    return _resize(image, height, width)


def grayscale(mask: Tensor) -> Tensor:
    """(3, H, W), (1, H, W) or (H, W) → (1, H, W), the mean of the channels (masks are read as RGB)."""
    if mask.dim() == 2:
        return mask.unsqueeze(0)
    return mask.mean(dim=0, keepdim=True)


def check_mask_styles(style_groups: Sequence[tuple], weights: Sequence[float] | None, *,
                      style_dir: bool = False) -> None:
    """A mask gives each of its two regions one style: every group of styles used together must
    have exactly two (foreground first), and no blend weights."""
    if weights is not None:
        raise UsageError("--mask gives each region one style: drop --style-blend")
    for group in style_groups:
        if len(group) != 2:
            raise UsageError(f"--mask needs exactly two styles (foreground first, then background), got {len(group)}"
                             + (" (--style-dir uses each style alone)" if style_dir else ""))


def check_min_size(image: Tensor, name: str, minimum: int = MIN_SIDE) -> None:
    if min(image.shape[-2:]) < minimum:
        raise ImageError(
            f"{name!r} is {image.shape[-1]}x{image.shape[-2]} after resizing, smaller than the "
            f"{minimum}px the network needs: use a less extreme aspect ratio or a larger --size"
        )


def check_resizable(image: Tensor, name: str, size: int | None, edge: str = "long") -> None:
    """Fail early, naming the file, if resizing to ``size`` leaves a side under MIN_SIDE."""
    height, width = image.shape[-2:]
    if size:
        height, width = scaled_size(height, width, size, edge)
    check_min_size(torch.empty(0, height, width), name)


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files (by extension) below ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{str(folder)!r} is not a folder: pass a folder of images")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file, existing or not. Never raises: a symlink loop
    (where ``Path.resolve`` raises RuntimeError) compares by its unresolved real path."""
    a, b = Path(a), Path(b)
    return _same_file(a, b) or os.path.realpath(a) == os.path.realpath(b)


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *,
                      formats: Iterable[str] = OUTPUT_FORMATS, kind: str = "image", example: str = "out.png") -> Path:
    """Validate an output path before any work: known extension (one of ``formats``; a ``kind``
    such as a video clip names its own), not one of the inputs."""
    path = Path(path)
    if path.suffix.lower() not in formats:
        raise UsageError(f"output {str(path)!r}: unknown {kind} extension; use one of "
                         + ", ".join(sorted(formats)))
    for source in inputs:
        if source is not None and same_path(path, source):
            raise UsageError(f"output {str(path)!r} is one of the input images; choose another name")
    if path.is_dir():
        raise UsageError(f"output {str(path)!r} is a folder; give a file name such as {example}")
    return path


def to_pil(image: Tensor) -> Image.Image:
    image = image.detach().float().cpu()
    if image.dim() == 4:
        image = image[0]
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def save_image(image: Tensor, path: str | os.PathLike, *, metadata: Mapping | None = None,
               inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write a (3, H, W) or (1, 3, H, W) tensor atomically (temporary file, then rename).

    ``metadata`` goes into a PNG text chunk (or a JPEG comment) under the key ``styletransfer``.
    """
    path = check_output_path(path, inputs)
    pil = to_pil(image)
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    options: dict = {}
    text = json.dumps(metadata, default=str, sort_keys=True) if metadata else None
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        info.add_text("styletransfer", text)
        options["pnginfo"] = info
    elif fmt == "JPEG":
        options["quality"] = 95
        if text:
            options["comment"] = text.encode()
    try:
        atomic_write(path, lambda stream: pil.save(stream, format=fmt, **options))
    except OSError as error:
        raise ImageError(f"cannot write {str(path)!r}: {error.strerror or error} "
                         "(check free space and permissions)") from None
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The settings embedded by ``save_image`` (empty when there are none)."""
    with Image.open(path) as image:
        text = image.info.get("styletransfer") or image.info.get("comment")
    if isinstance(text, bytes):
        text = text.decode()
    return json.loads(text) if text else {}
