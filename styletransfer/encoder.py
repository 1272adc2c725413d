"""VGG19 feature extractor whose layers are addressed by name.

The layer names (``conv1_1``, ``relu1_1``, ... ``pool5``) are derived by walking the VGG19
configuration, so their order is torchvision's ``vgg19().features`` index order. The encoder
takes RGB images in [0, 1] and applies its own preprocessing, so callers never normalise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Literal, Mapping, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import WeightsError

# Output channels of each conv; "M" is a pooling layer (torchvision's configuration "E").
VGG19_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe's BGR mean pixel (in 0-255 units), folded into pytorch-AdaIN's first 1x1 conv.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

Preprocessing = Literal["imagenet", "caffe", "none"]
Pooling = Literal["max", "avg", "none"]
Padding = Literal["zeros", "reflect", "tf-same"]

# The encoder every command and function uses unless told otherwise: the original VGG19, offline
# (a source of ``weights.ENCODER_SOURCES``, where callers also find it).
DEFAULT_ENCODER = "vgg19"

# Gatys et al.'s layers (content conv4_2, here after its ReLU).
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_CONTENT_LAYERS = ("relu4_2",)


def _walk_config() -> list[tuple[str, int, int]]:
    """(name, in_channels, out_channels) for every layer; channels are 0 for relu/pool."""
    layers: list[tuple[str, int, int]] = []
    block, index, channels = 1, 0, 3
    for item in VGG19_CONFIG:
        if item == "M":
            layers.append((f"pool{block}", 0, 0))
            block, index = block + 1, 0
            continue
        index += 1
        layers.append((f"conv{block}_{index}", channels, int(item)))
        layers.append((f"relu{block}_{index}", 0, 0))
        channels = int(item)
    return layers


VGG19_LAYERS: tuple[str, ...] = tuple(name for name, _, _ in _walk_config())
VGG19_CONVS: tuple[str, ...] = tuple(name for name in VGG19_LAYERS if name.startswith("conv"))


# Where each conv's weights sit in torchvision's ``vgg19().features`` state dict (``KEY.weight/bias``).
TORCHVISION_KEYS: dict[str, str] = {name: f"features.{VGG19_LAYERS.index(name)}" for name in VGG19_CONVS}


def layer_channels(name: str) -> int:
    """Number of channels a named layer outputs (3 for the input itself)."""
    channels = 3
    for layer, _, out in _walk_config():
        channels = out or channels
        if layer == name:
            return channels
    raise KeyError(name)


def check_layers(names: Iterable[str], available: tuple[str, ...] = VGG19_LAYERS) -> list[str]:
    """Validate layer names, returning them as a list; unknown names raise a UsageError."""
    from .errors import UsageError

    names = list(names)
    for name in names:
        if name not in available:
            from .registry import did_you_mean

            hint = did_you_mean(name, available)
            raise UsageError(
                f"unknown layer {name!r} for this encoder{hint}; available: {available[0]} ... {available[-1]}"
            )
    return names


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that distinguishes one VGG19 flavour from another, besides the weights."""

    preprocessing: Preprocessing = "imagenet"
    padding: Padding = "zeros"
    pooling: Pooling = "max"
    ceil_mode: bool = False
    last_layer: str = VGG19_LAYERS[-1]
    source: str = "random"  # where the weights came from, for reports and metadata
    sha256: str | None = None
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    def with_pooling(self, pooling: Pooling) -> "EncoderSpec":
        return replace(self, pooling=pooling)

    def same_weights(self, recorded: dict) -> bool:
        """Whether ``recorded`` (``{"source", "sha256"}``, as decoders and checkpoints store their
        encoder) names these weights: by sha256 when either side has one, else by source."""
        if recorded.get("sha256") or self.sha256:
            return recorded.get("sha256") == self.sha256
        return recorded.get("source") == self.source

    def decoder_mismatch(self, decoder_config: dict) -> str | None:
        """Why a decoder and this encoder may not belong together, or None.

        Our decoder files record their encoder (``decoder_config["encoder"]``); pytorch-AdaIN's
        decoder.pth records nothing and was trained with its vgg_normalised.pth, recognised here
        by its layout.
        """
        trained = decoder_config.get("encoder") or {}
        if trained and not self.same_weights(trained):
            return (f"this decoder was trained with encoder {trained.get('source')!r} "
                    f"(sha256 {str(trained.get('sha256'))[:12]}), but the encoder in use is {self.source!r} "
                    f"(sha256 {str(self.sha256)[:12]}): expect poor images")
        if not decoder_config and self.metadata.get("layout") != "adain":
            return (f"this decoder records no encoder (pytorch-AdaIN's decoder.pth is trained with its "
                    f"vgg_normalised.pth), but the encoder in use is {self.source!r}: pass "
                    "--weights vgg_normalised.pth, or expect poor images")
        return None


class Encoder(Protocol):
    """What every encoder offers (:class:`VGGEncoder`, Magenta's predictor as
    :class:`~styletransfer.magenta.encoder.MagentaEncoder`): named features of RGB images in [0, 1],
    its own preprocessing, and the layers a loss uses when none are named. Code that only reads
    features takes an ``Encoder``; code that builds or copies VGG19 weights takes a ``VGGEncoder``."""

    spec: EncoderSpec
    layer_names: tuple[str, ...]
    default_style_layers: tuple[str, ...]
    default_content_layers: tuple[str, ...]
    perceptual_content_layer: str
    perceptual_style_layers: tuple[str, ...]

    def __call__(self, image: Tensor, layers: Iterable[str]) -> dict[str, Tensor]: ...

    def to(self, *args, **kwargs) -> "Encoder": ...

    def eval(self) -> "Encoder": ...


class ImageNetNormalize(nn.Module):
    """RGB in [0,1] → (x − mean) / std, the preprocessing torchvision's weights expect."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        return (image - self.mean) / self.std


def caffe_preprocess_conv() -> nn.Conv2d:
    """The 1x1 conv that maps RGB in [0,1] to Caffe's BGR×255 minus the mean pixel."""
    conv = nn.Conv2d(3, 3, kernel_size=1)
    with torch.no_grad():
        conv.weight.zero_()
        for out_channel, in_channel in enumerate((2, 1, 0)):  # RGB → BGR
            conv.weight[out_channel, in_channel] = 255.0
        conv.bias.copy_(-torch.tensor(CAFFE_BGR_MEAN))
    return conv


class VGGEncoder(nn.Module):
    """VGG19 features by layer name. ``forward(image, layers)`` returns ``{name: tensor}``.

    Only the layers up to the deepest requested one are run.
    """

    default_style_layers = DEFAULT_STYLE_LAYERS
    default_content_layers = DEFAULT_CONTENT_LAYERS
    # The perceptual loss of feed-forward training (Johnson et al. 2016; ``ablate norm``).
    perceptual_content_layer = "relu2_2"
    perceptual_style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

    def __init__(self, spec: EncoderSpec = EncoderSpec()) -> None:
        super().__init__()
        self.spec = spec
        last = VGG19_LAYERS.index(spec.last_layer)
        self.layer_names: tuple[str, ...] = VGG19_LAYERS[: last + 1]
        if spec.preprocessing == "imagenet":
            self.preprocess: nn.Module = ImageNetNormalize()
        else:
            self.preprocess = caffe_preprocess_conv()
        self.convs = nn.ModuleDict(
            {
                name: nn.Conv2d(cin, cout, kernel_size=3, padding=1, padding_mode=spec.padding)
                for name, cin, cout in _walk_config()
                if name.startswith("conv") and name in self.layer_names
            }
        )
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def _pool(self, x: Tensor) -> Tensor:
        if self.spec.pooling == "max":
            return F.max_pool2d(x, 2, 2, ceil_mode=self.spec.ceil_mode)
        return F.avg_pool2d(x, 2, 2, ceil_mode=self.spec.ceil_mode)

    def forward(self, image: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        wanted = set(check_layers(layers, self.layer_names))
        if not wanted:
            return {}
        deepest = max(self.layer_names.index(name) for name in wanted)
        outputs: dict[str, Tensor] = {}
        x = self.preprocess(image)
        for name in self.layer_names[: deepest + 1]:
            kind = name[:4]
            if kind == "conv":
                x = self.convs[name](x)
            elif kind == "relu":
                # In place unless the conv output itself was asked for.
                x = F.relu(x, inplace=name.replace("relu", "conv") not in wanted)
            else:
                x = self._pool(x)
            if name in wanted:
                outputs[name] = x
        return outputs

    def load_convs(self, tensors: Mapping[str, Tensor], keys: Mapping[str, str], source: str) -> None:
        """Copy ``tensors[keys[conv] + '.weight'/'.bias']`` into each conv, checking shapes."""
        with torch.no_grad():
            for name, conv in self.convs.items():
                for kind in ("weight", "bias"):
                    key = f"{keys[name]}.{kind}"
                    target = getattr(conv, kind)
                    tensor = tensors[key]
                    if tensor.shape != target.shape:
                        raise WeightsError(
                            f"{source!r}: {key} has shape {tuple(tensor.shape)} but {name} needs "
                            f"{tuple(target.shape)}; this is not a VGG19 checkpoint"
                        )
                    target.copy_(tensor)

    def torchvision_state_dict(self) -> dict[str, Tensor]:
        """The weights under torchvision's ``features.N.weight/bias`` keys."""
        return {
            f"{TORCHVISION_KEYS[name]}.{kind}": tensor
            for name, conv in self.convs.items()
            for kind, tensor in (("weight", conv.weight), ("bias", conv.bias))
        }


def init_random_(encoder: VGGEncoder, seed: int) -> VGGEncoder:
    """Kaiming-normal conv weights (variance-preserving through ReLUs), zero biases."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in encoder.convs.values():
            fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            conv.bias.zero_()
    return encoder
