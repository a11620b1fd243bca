"""Export a model's decoder(s) for the browser: a JSON list of ops plus one float32 weight blob.

The browser (``explorer/ui/live_decoder/kernels.js``) runs the ops in order on a flat
Float32Array; every tensor is C-order, so reshape/Unflatten only changes the recorded shape.
BatchNorm (eval mode) is folded into the Linear or conv before it. A layer the browser has no
kernel for raises ``NotExportable`` and the pages decode on the server instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from explorer.errors import ExplorerError
from explorer.models import BaseVAE

FINALS = ("sigmoid", "softmax", "none")


class NotExportable(ExplorerError):
    """The decoder has a layer (or a layout) the in-browser decoder cannot run."""


@dataclass
class DecoderExport:
    """What the browser needs: ``spec`` (JSON-able) and ``blob`` (float32 little-endian weights)."""

    spec: dict
    blob: bytes = field(repr=False)

    @property
    def n_bytes(self) -> int:
        return len(self.blob)


class _Blob:
    """Collects float32 arrays; ops refer to them by offset (in floats) and length."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.size = 0

    def add(self, t: Tensor) -> int:
        a = t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False).ravel()
        offset, self.size = self.size, self.size + a.size
        self.parts.append(a)
        return offset

    def bytes(self) -> bytes:
        return b"".join(p.tobytes() for p in self.parts)


def _fold_bn(weight: Tensor, bias: Tensor | None, bn: nn.Module, out_dim: int) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode BatchNorm into the preceding layer's weight (out along ``out_dim``) and bias."""
    if bn.running_mean is None or bn.running_var is None:
        raise NotExportable(f"{type(bn).__name__} without running statistics is not exportable")
    scale = 1 / torch.sqrt(bn.running_var + bn.eps)  # (out,)
    if bn.weight is not None:
        scale = scale * bn.weight
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    b = (b - bn.running_mean) * scale + (bn.bias if bn.bias is not None else 0)
    return weight * scale.reshape(shape), b


def _conv_out(n: int, k: int, s: int, p: int, op: int, transposed: bool) -> int:
    return (n - 1) * s - 2 * p + k + op if transposed else (n + 2 * p - k) // s + 1


def _export_layers(layers: list[nn.Module], in_shape: list[int], blob: _Blob) -> tuple[list[dict], list[int]]:
    """Ops for a flat list of modules, starting from ``in_shape`` (no batch dim). -> (ops, out_shape)"""
    ops: list[dict] = []
    shape = list(in_shape)
    i = 0
    while i < len(layers):
        m = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        fold = isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d))
        if isinstance(m, nn.Linear):
            if shape[-1] != m.in_features or len(shape) != 1:
                raise NotExportable(f"Linear({m.in_features}) gets input of shape {shape}")
            w, b = m.weight, m.bias if m.bias is not None else torch.zeros(m.out_features)
            if fold:
                w, b = _fold_bn(w, b, nxt, 0)
            ops.append({"op": "linear", "in": m.in_features, "out": m.out_features, "w": blob.add(w), "b": blob.add(b)})
            shape = [m.out_features]
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            transposed = isinstance(m, nn.ConvTranspose2d)
            if len(shape) != 3 or shape[0] != m.in_channels:
                raise NotExportable(f"{type(m).__name__}({m.in_channels}, …) gets input of shape {shape}")
            if m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise NotExportable(f"{type(m).__name__} with groups, dilation or non-zero padding is not exportable")
            w = m.weight  # conv: (out, in, kh, kw); transposed: (in, out, kh, kw)
            b = m.bias if m.bias is not None else torch.zeros(m.out_channels)
            if fold:
                w, b = _fold_bn(w, b, nxt, 1 if transposed else 0)
            (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
            oph, opw = m.output_padding if transposed else (0, 0)
            out = [
                m.out_channels,
                _conv_out(shape[1], kh, sh, ph, oph, transposed),
                _conv_out(shape[2], kw, sw, pw, opw, transposed),
            ]
            ops.append(
                {
                    "op": "conv_transpose2d" if transposed else "conv2d",
                    "in_shape": shape,
                    "out_shape": out,
                    "k": [kh, kw],
                    "stride": [sh, sw],
                    "pad": [ph, pw],
                    "w": blob.add(w),
                    "b": blob.add(b),
                }
            )
            shape = out
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):  # not after a Linear/conv: y = x * scale + shift
            raise NotExportable(f"{type(m).__name__} that does not follow a Linear or conv layer is not exportable")
        elif isinstance(m, nn.Unflatten):
            shape = _reshape(shape, [*shape[: m.dim - 1], *m.unflattened_size, *shape[m.dim :]])
        elif isinstance(m, nn.Flatten):
            shape = [math.prod(shape)]
        elif isinstance(m, nn.Identity) or (isinstance(m, nn.Dropout)):
            pass
        elif isinstance(m, nn.ReLU):
            ops.append({"op": "relu"})
        elif isinstance(m, nn.LeakyReLU):
            ops.append({"op": "leaky_relu", "slope": float(m.negative_slope)})
        elif isinstance(m, nn.ELU):
            ops.append({"op": "elu", "alpha": float(m.alpha)})
        elif isinstance(m, nn.Sigmoid):
            ops.append({"op": "sigmoid"})
        elif isinstance(m, nn.Tanh):
            ops.append({"op": "tanh"})
        elif isinstance(m, nn.Sequential):
            sub, shape = _export_layers(list(m), shape, blob)
            ops.extend(sub)
        else:
            raise NotExportable(f"{type(m).__name__} is not exportable to the browser decoder")
        i += 2 if fold else 1
    return ops, shape


def _reshape(shape: list[int], new: list[int]) -> list[int]:
    new = [int(s) for s in new]
    if math.prod(new) != math.prod(shape):
        raise NotExportable(f"cannot reshape {shape} to {new}")
    return new


def export_module(module: nn.Module, in_features: int, out_shape: list[int], final: str, blob: _Blob) -> dict:
    """One decoder network: (in_features,) -> ``out_shape`` then ``final`` (sigmoid, softmax or none)."""
    if final not in FINALS:
        raise NotExportable(f"unknown final activation {final!r}")
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    ops, shape = _export_layers(layers, [in_features], blob)
    _reshape(shape, list(out_shape))  # the view() the model applies after its network
    return {"in": in_features, "shape": [int(s) for s in out_shape], "final": final, "ops": ops}


def _decoder_parts(model: BaseVAE) -> list[tuple[str, nn.Module, list[int], str]]:
    """(name, network, output shape, final activation) for each modality the model decodes.

    A model whose decoder is not a torch network of its own (an imported ONNX model) may provide
    ``export_parts()`` giving the same list.
    """
    if hasattr(model, "export_parts"):
        return model.export_parts()
    net = getattr(model, "decoder", None)
    if not isinstance(net, nn.Module):
        raise NotExportable(f"{model.kind or type(model).__name__} has no decoder network to export")
    cfg = model.config
    parts = [("image", net, list(cfg.in_shape), "sigmoid")]
    net2 = getattr(model, "decoder2", None)
    if isinstance(net2, nn.Module):
        second = getattr(cfg, "second", "image")
        parts.append((second, net2, list(cfg.second_shape), "softmax" if second == "label" else "sigmoid"))
    return parts


@torch.no_grad()
def export_decoder(model: BaseVAE, key: str = "") -> DecoderExport:
    """The model's decoder(s) as ops + weights. ``key`` (the checkpoint's content hash) names it in the browser.

    Conditional models take the class one-hot after z: the first op's input is z + n_classes.
    Raises ``NotExportable`` for a layer the browser cannot run.
    """
    if model.training:
        raise NotExportable("put the model in eval mode before exporting it")
    blob = _Blob()
    n_cond = model.config.n_classes if model.conditional else 0
    outputs = []
    for name, net, shape, final in _decoder_parts(model):
        out = export_module(net, model.latent_dim + n_cond, shape, final, blob)
        outputs.append({"name": name, **out})
    spec = {"key": key, "latent_dim": model.latent_dim, "n_classes": n_cond, "outputs": outputs, "n_floats": blob.size}
    return DecoderExport(spec, blob.bytes())
