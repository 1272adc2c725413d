"""File-level entry points: read images, build the encoder, run a method, write the results.

The CLI only parses flags into these calls; everything here is usable from Python.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Sequence

import torch

from .devices import resolve_device
from .encoder import VGGEncoder
from .errors import UsageError
from .files import atomic_write_json
from .imageio import DEFAULT_MAX_PIXELS, check_output_path, check_resizable, load_image, save_image
from .optimize import StylizeConfig, StylizeResult, stylize
from .weights import load_encoder


def encoder_info(encoder: VGGEncoder) -> dict:
    spec = encoder.spec
    return {"source": spec.source, "sha256": spec.sha256, "layout": spec.metadata.get("layout", "random"),
            "pooling": spec.pooling, "padding": spec.padding, "last_layer": spec.last_layer}


def environment_info(device: torch.device) -> dict:
    return {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}


def stylize_files(content: str | os.PathLike, styles: Sequence[str | os.PathLike], output: str | os.PathLike,
                  config: StylizeConfig | None = None, *, weights: str | VGGEncoder = "imagenet",
                  pooling: str | None = None, device: str = "auto", report: str | os.PathLike | None = None,
                  progress: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> StylizeResult:
    """Stylise the image file ``content`` with the style image files and write ``output``.

    Validation (flags, paths, images, weights) happens before any optimisation starts.
    """
    config = (config or StylizeConfig()).validate()
    if not styles:
        raise UsageError("give at least one style image")
    inputs = [content, *styles]
    output = check_output_path(output, inputs)
    if report is not None:
        report = Path(report)
        if report.suffix.lower() != ".json":
            raise UsageError(f"--report {str(report)!r}: the report is JSON; name it *.json")
        if any(report.resolve() == Path(p).resolve() for p in [*inputs, output]):
            raise UsageError(f"--report {str(report)!r} would overwrite an input or the output")
    torch_device = resolve_device(device)
    content_image = load_image(content, max_pixels=max_pixels)
    style_images = [load_image(path, max_pixels=max_pixels) for path in styles]
    smallest = min(config.scales)
    check_resizable(content_image, str(content), smallest)
    for path, image in zip(styles, style_images):
        check_resizable(image, str(path), max(16, round(smallest * config.style_scale)))
    encoder = weights if isinstance(weights, VGGEncoder) else load_encoder(weights, pooling=pooling)
    result = stylize(content_image, style_images, encoder, config, device=torch_device, progress=progress)
    metadata = {"method": "optimize", "config": config.to_dict(), "weights": encoder_info(encoder)}
    save_image(result.image, output, metadata=metadata, inputs=inputs)
    if report is not None:
        atomic_write_json(report, {
            "method": "optimize",
            "content": str(content),
            "styles": [str(s) for s in styles],
            "output": str(output),
            "output_size": [result.image.shape[-1], result.image.shape[-2]],
            "config": config.to_dict(),
            "weights": encoder_info(encoder),
            "environment": environment_info(torch_device),
            "seconds": result.seconds,
            "history": result.history,
        })
    return result
