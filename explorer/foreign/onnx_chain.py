"""An imported ONNX decoder as torch layers the in-browser exporter understands, when it is a simple chain.

Covers what MLP decoders export to: Gemm (or MatMul then Add), Relu, LeakyRelu, Elu, Sigmoid, Tanh,
and shape-only nodes (Reshape, Flatten, Identity, Squeeze, Unsqueeze). Anything else, or a graph
that is not one chain from the code to the image, raises ``NotExportable`` and pages decode on the
server with onnxruntime. Only initializers and Constant nodes are read: nothing is run.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.export import NotExportable

SHAPE_ONLY = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze"}  # C-order data: values unchanged
ACTIVATIONS = {
    "Relu": lambda a: nn.ReLU(),
    "Sigmoid": lambda a: nn.Sigmoid(),
    "Tanh": lambda a: nn.Tanh(),
    "LeakyRelu": lambda a: nn.LeakyReLU(a.get("alpha", 0.01)),
    "Elu": lambda a: nn.ELU(a.get("alpha", 1.0)),
}


def _linear(w: np.ndarray, b: np.ndarray | None) -> nn.Linear:
    """A Linear from an ONNX weight of shape (in, out) and an optional bias (out,)."""
    if w.ndim != 2 or (b is not None and b.shape != (w.shape[1],)):
        raise NotExportable(f"a matrix product of shape {w.shape} is not a plain dense layer")
    lin = nn.Linear(w.shape[0], w.shape[1])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T, dtype=np.float32)))
        lin.bias.copy_(torch.from_numpy(np.array(b, np.float32)) if b is not None else torch.zeros(w.shape[1]))
    return lin


def onnx_chain(data: bytes, decoder_output: str) -> tuple[nn.Sequential, str]:
    """(layers, final activation) for the browser exporter; raises ``NotExportable`` where it cannot."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(data).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise NotExportable("the ONNX decoder has more than one input or output")
    cur, layers = inputs[0], []
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            if "value" not in attrs:
                raise NotExportable("an ONNX Constant without a tensor value")
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
            continue
        flowing = [i for i in node.input if i and i not in consts]
        if flowing != [cur] or len(node.output) != 1:
            raise NotExportable(f"the ONNX decoder is not a simple chain of layers (at {node.op_type})")
        op = node.op_type
        if op == "Gemm":
            if attrs.get("transA", 0):
                raise NotExportable("Gemm with transA is not exportable")
            w = consts[node.input[1]] * attrs.get("alpha", 1.0)
            w = w.T if attrs.get("transB", 0) else w  # (in, out)
            b = consts[node.input[2]] * attrs.get("beta", 1.0) if len(node.input) > 2 and node.input[2] else None
            layers.append(_linear(w, None if b is None else np.broadcast_to(b, (w.shape[1],))))
        elif op == "MatMul":
            layers.append(_linear(consts[node.input[1]], None))
        elif op == "Add" and layers and isinstance(layers[-1], nn.Linear):
            b = np.broadcast_to(consts[next(i for i in node.input if i != cur)], (layers[-1].out_features,))
            with torch.no_grad():
                layers[-1].bias.add_(torch.from_numpy(np.array(b, np.float32)))
        elif op in ACTIVATIONS:
            layers.append(ACTIVATIONS[op](attrs))
        elif op not in SHAPE_ONLY:
            raise NotExportable(f"the ONNX op {op} is not exportable to the browser decoder")
        cur = node.output[0]
    if cur != graph.output[0].name:
        raise NotExportable("the ONNX decoder's output is not the end of its chain")
    if decoder_output == "logits":
        return nn.Sequential(*layers), "sigmoid"
    if layers and isinstance(layers[-1], nn.Sigmoid):  # the exporter applies the final sigmoid itself
        return nn.Sequential(*layers[:-1]), "sigmoid"
    raise NotExportable("the ONNX decoder outputs probabilities without ending in a Sigmoid")
