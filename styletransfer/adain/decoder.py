"""The AdaIN decoder and the encoder–decoder pair it forms with a VGG19 encoder.

The decoder mirrors VGG19 up to relu4_1 with nearest upsampling and reflection-padded 3x3 convs.
Built with norm ``none`` its ``nn.Sequential`` children are exactly pytorch-AdaIN's
``decoder.pth`` (29 children, weights at 1, 5, 8, 11, 14, 18, 21, 25, 28), so that file loads
without key surgery. Our own decoder files are safetensors with a JSON ``config`` in the header
metadata (norm, encoder source and sha256, training settings).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from torch import Tensor, nn

from ..encoder import Encoder
from ..errors import UsageError, WeightsError
from ..files import sha256_file
from ..norms import make_norm
from ..weights import DEFAULT_ENCODER, load_encoder, load_state_file
from .functional import ADAIN_LAYER, mean_std

# Decoder plan: (in, out) conv blocks and "up" for 2x nearest upsampling; the last conv has no ReLU.
DECODER_PLAN: tuple = (
    (512, 256), "up", (256, 256), (256, 256), (256, 256), (256, 128), "up",
    (128, 128), (128, 64), "up", (64, 64), (64, 3),
)  # fmt: skip
DECODER_LAYOUT = "pytorch-AdaIN decoder.pth: nn.Sequential keys 1, 5, 8, 11, 14, 18, 21, 25, 28 (.weight/.bias)"


# Decoders this project trained and ships inside the package (so an installed wheel has them),
# by the encoder source they decode; weights/README.md describes each.
SHIPPED_DECODERS: dict[str, Path] = {"vgg19": Path(__file__).resolve().parent.parent / "decoders" / "adain_vgg19.safetensors"}


def default_decoder(weights) -> Path | None:
    """The shipped decoder for the encoder ``weights`` names (a source name or an encoder), or None:
    ``--method adain``/``wct`` need no ``--decoder`` with the default encoder."""
    source = weights if isinstance(weights, str) else getattr(getattr(weights, "spec", None), "source", None)
    path = SHIPPED_DECODERS.get(source or "")
    return path if path is not None and path.is_file() else None


def resolve_decoder(decoder, weights, method: str):
    """``decoder``, or when None the one shipped for the encoder ``weights`` names; with neither,
    a usage error naming the remedy (``method``: the method that needs it)."""
    decoder = decoder if decoder is not None else default_decoder(weights)
    if decoder is None:
        raise UsageError(f"--method {method} needs --decoder PATH (an AdaIN decoder .safetensors or pytorch-AdaIN's "
                         f"decoder.pth): the shipped decoder serves the default encoder only (--weights "
                         f"{DEFAULT_ENCODER})")
    return decoder


class Decoder(nn.Sequential):
    """relu4_1 features → RGB image, with an optional normalization after each inner conv."""

    def __init__(self, norm: str = "none") -> None:
        layers: list[nn.Module] = []
        convs = [step for step in DECODER_PLAN if step != "up"]
        for step in DECODER_PLAN:
            if step == "up":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                continue
            cin, cout = step
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
            if step is not convs[-1]:
                norm_layer = make_norm(norm, cout)
                if norm_layer is not None:
                    layers.append(norm_layer)
                layers.append(nn.ReLU())
        super().__init__(*layers)
        self.norm = norm


def save_decoder(decoder: Decoder, path: str | os.PathLike, config: dict) -> Path:
    """Write decoder weights as safetensors with ``config`` (JSON) in the header, atomically."""
    from safetensors.torch import save as save_bytes

    from ..files import atomic_write

    state = {k: v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()}
    metadata = {"format": "styletransfer-adain-decoder", "config": json.dumps({**config, "norm": decoder.norm})}
    data = save_bytes(state, metadata=metadata)
    return atomic_write(path, lambda stream: stream.write(data))


def load_decoder(path: str | os.PathLike) -> tuple[Decoder, dict]:
    """Load our safetensors decoder (norm from its metadata), pytorch-AdaIN's decoder.pth, or
    the cached file of a downloaded manifest entry such as ``adain-decoder``."""
    path = Path(path).expanduser()
    if not path.exists():  # maybe a manifest name such as "adain-decoder", downloaded earlier
        from ..hub import resolve_weights_path

        path = resolve_weights_path(str(path), kind="decoder")
    state = load_state_file(path)
    config: dict = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            config = json.loads((handle.metadata() or {}).get("config", "{}"))
    decoder = Decoder(config.get("norm", "none"))
    expected = decoder.state_dict()
    missing = sorted(set(expected) - set(state), key=_key_order)
    unexpected = sorted(set(state) - set(expected), key=_key_order)
    if missing or unexpected:
        raise WeightsError(
            f"{str(path)!r} is not an AdaIN decoder for norm {decoder.norm!r} (missing keys: "
            f"{', '.join(missing[:4]) or 'none'}; unexpected: {', '.join(unexpected[:4]) or 'none'}); "
            f"expected a {DECODER_LAYOUT}, or a decoder written by `styletransfer train`"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise WeightsError(f"{str(path)!r}: {key} has shape {tuple(tensor.shape)}, expected "
                               f"{tuple(expected[key].shape)} ({DECODER_LAYOUT})")
    decoder.load_state_dict(state)
    return decoder.eval(), config


def _key_order(key: str) -> tuple:
    head = key.split(".")[0]
    return (int(head) if head.isdigit() else 10**6, key)


class AdaINModel(nn.Module):
    """The networks of AdaIN: the encoder (to relu4_1) and the decoder. AdaIN itself is applied
    in one place, :class:`~styletransfer.adain.stylizer.AdaINStylizer` (training builds its
    target with :func:`~styletransfer.adain.functional.adain`), so this holds no forward pass."""

    def __init__(self, encoder: Encoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def encode(self, image: Tensor) -> Tensor:
        return self.encoder(image, [ADAIN_LAYER])[ADAIN_LAYER]

    def style_statistics(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """μ and σ of the style's relu4_1 features; compute once, reuse for many contents."""
        return mean_std(self.encode(style).float())  # statistics in float32 whatever the network's dtype


def pair_with(encoder: Encoder, decoder: Decoder, decoder_config: dict) -> tuple[AdaINModel, str | None]:
    """The encoder–decoder pair, and a warning's text when the decoder was trained with another
    encoder (None when they belong together). ``stylize --method adain|wct``, ``compare`` and
    ``serve`` all pair them here; each caller shows the warning its own way."""
    return AdaINModel(encoder, decoder), encoder.spec.decoder_mismatch(decoder_config)


def decoder_info(path: str | os.PathLike | None, config: dict) -> dict:
    return {"file": None if path is None else str(path), "sha256": None if path is None else sha256_file(path),
            "norm": config.get("norm", "none"), "config": config}


def decoder_model(decoder: str | os.PathLike | Decoder, weights: str | Encoder,
                  pooling: str | None) -> tuple[AdaINModel, dict]:
    """The encoder–decoder pair (AdaIN's, and WCT's) and the decoder's description; warns when
    decoder and encoder do not belong together."""
    if isinstance(decoder, Decoder):
        network, decoder_config, decoder_path = decoder, {"norm": decoder.norm}, None
    else:  # before the encoder: a wrong decoder file is found without a download
        (network, decoder_config), decoder_path = load_decoder(decoder), decoder
    encoder = weights if isinstance(weights, nn.Module) else load_encoder(weights, pooling=pooling)
    model, mismatch = pair_with(encoder, network, decoder_config)
    if mismatch is not None:
        warnings.warn(mismatch, stacklevel=3)
    return model, decoder_info(decoder_path, decoder_config)
