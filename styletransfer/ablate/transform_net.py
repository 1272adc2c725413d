"""A small feed-forward stylisation network (Johnson et al. 2016 / Ulyanov et al. 2016 style).

Layout: a 9×9 conv, two stride-2 3×3 convs (downsampling ×4), residual blocks, two
nearest-upsample + 3×3 conv stages, a final 9×9 conv and a sigmoid to RGB in [0, 1]. Every
conv but the last is followed by the normalization named by ``norm`` (``styletransfer.norms``)
and a ReLU, so a normalization ablation is a loop over names. Convs use reflection padding.

Inputs of any size work: the image is reflection-padded to a multiple of 4 and the output
cropped back, so the output always has the input's height and width.

Modes follow the registry's layers: ``batch`` normalises with batch statistics in training and
running averages in evaluation; ``instance``, ``layer`` and ``group`` use each image's own
statistics in both modes.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import WeightsError
from ..norms import make_norm

DOWNSAMPLING = 4  # two stride-2 convs
OUTER_KERNEL = 9  # first and last conv, as in Johnson et al.
INNER_KERNEL = 3
FILE_FORMAT = "styletransfer-transformer"


@dataclass(frozen=True)
class TransformerConfig:
    """The architecture; stored in saved files so loading needs nothing else."""

    norm: str = "instance"
    width: int = 32  # channels after the first conv; doubled by each downsampling conv
    residual_blocks: int = 5


def conv_block(cin: int, cout: int, kernel: int, *, stride: int = 1, norm: str = "none",
               relu: bool = True) -> nn.Sequential:
    """Reflection pad → conv → the named norm (none: nothing) → ReLU unless ``relu=False``."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride=stride)]
    norm_layer = make_norm(norm, cout)
    if norm_layer is not None:
        layers.append(norm_layer)
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """x + norm(conv(relu(norm(conv(x))))), channels unchanged."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_block(channels, channels, INNER_KERNEL, norm=norm),
                                  conv_block(channels, channels, INNER_KERNEL, norm=norm, relu=False))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Upsample(nn.Module):
    """2× nearest upsampling followed by a conv block (no transposed-conv checkerboards)."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.conv = conv_block(cin, cout, INNER_KERNEL, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    """RGB image in [0, 1] → stylised RGB image in [0, 1] of the same size."""

    def __init__(self, config: TransformerConfig = TransformerConfig()) -> None:
        super().__init__()
        self.config = config
        w, norm = config.width, config.norm
        self.down = nn.Sequential(
            conv_block(3, w, OUTER_KERNEL, norm=norm),
            conv_block(w, 2 * w, INNER_KERNEL, stride=2, norm=norm),
            conv_block(2 * w, 4 * w, INNER_KERNEL, stride=2, norm=norm),
        )
        self.residual = nn.Sequential(*(ResidualBlock(4 * w, norm) for _ in range(config.residual_blocks)))
        self.up = nn.Sequential(Upsample(4 * w, 2 * w, norm), Upsample(2 * w, w, norm))
        self.head = conv_block(w, 3, OUTER_KERNEL, relu=False)

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        pad_h, pad_w = (-height) % DOWNSAMPLING, (-width) % DOWNSAMPLING
        x = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else image
        x = self.up(self.residual(self.down(x)))
        return torch.sigmoid(self.head(x))[..., :height, :width]  # (N, 3, H, W)


def build_transformer(norm: str = "instance", *, width: int = 32, residual_blocks: int = 5) -> TransformerNet:
    return TransformerNet(TransformerConfig(norm=norm, width=width, residual_blocks=residual_blocks))


def save_transformer(net: TransformerNet, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Weights (and BN running statistics) as safetensors, the config as JSON in the header."""
    from safetensors.torch import save as save_bytes

    from ..files import atomic_write

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    header = {"format": FILE_FORMAT, "config": json.dumps(asdict(net.config)),
              "metadata": json.dumps(metadata or {}, default=str)}
    data = save_bytes(state, metadata=header)
    return atomic_write(path, lambda stream: stream.write(data))


def load_transformer(path: str | os.PathLike) -> tuple[TransformerNet, dict]:
    """A network written by ``save_transformer`` (in eval mode) and its stored metadata."""
    from safetensors import safe_open

    from ..weights import load_state_file

    path = Path(path)
    state = load_state_file(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{str(path)!r} is not a transformer network file: expected a .safetensors "
                           "file written by `styletransfer ablate norm --save-nets`")
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
    if header.get("format") != FILE_FORMAT:
        raise WeightsError(f"{str(path)!r} is not a transformer network file (format "
                           f"{header.get('format')!r}); write one with `styletransfer ablate norm --save-nets`")
    net = TransformerNet(TransformerConfig(**json.loads(header["config"])))
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise WeightsError(f"{str(path)!r} does not match its stored config: {str(error).splitlines()[0]}") from None
    return net.eval(), json.loads(header.get("metadata", "{}"))
