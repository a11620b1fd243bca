"""ONNX encoder/decoder pairs: validated before use, run with onnxruntime (CUDA when present, else CPU).

Nothing in an ONNX file is code, but it can still point at other files (external data), use
operators from custom domains (native libraries), or declare tensors larger than memory. Those are
refused before onnxruntime sees the model, with one-line messages; the model is then handed to
onnxruntime as bytes, never as a path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from explorer.errors import CheckpointError
from explorer.foreign.base import ForeignVAE, foreign_config

MAX_ONNX_BYTES = 64 * 2**20  # per file
MAX_INITIALIZER_BYTES = 64 * 2**20  # declared size of all weights of one file together
ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
ENCODER_OUTPUTS = ("mu,logvar", "mu")
DECODER_OUTPUTS = ("probabilities", "logits")
RUN_BATCH = 1024


def _onnx():
    import onnx

    return onnx


def _tensors(graph) -> Iterator:
    """Every TensorProto a graph holds: initializers, sparse ones, and constant attributes (recursively)."""
    onnx = _onnx()
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == onnx.AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices


def _graphs(graph) -> Iterator:
    """The graph and its subgraphs (If, Loop, Scan bodies)."""
    onnx = _onnx()
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def _declared_bytes(t) -> int:
    """What a tensor will occupy once loaded, from its declared dims and type."""
    onnx = _onnx()
    n = 1
    for d in t.dims:
        if d < 0:
            raise CheckpointError(f"tensor {t.name!r} has a negative dimension")
        n *= d
    try:
        item = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        item = 8
    return max(n * item, len(t.raw_data))


def parse_onnx(data: bytes, name: str):
    """Parse and statically validate one ONNX file's bytes; returns the ModelProto. Opens no other file."""
    onnx = _onnx()
    if len(data) > MAX_ONNX_BYTES:
        raise CheckpointError(
            f"{name} is {len(data) / 2**20:.0f} MB; ONNX files are limited to {MAX_ONNX_BYTES // 2**20} MB"
        )
    if not data:
        raise CheckpointError(f"{name} is empty")
    try:
        model = onnx.load_model_from_string(data)  # a string never triggers external-data loading
    except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends become one message
        raise CheckpointError(f"{name} is not an ONNX model (it does not parse as one)") from None
    if not model.HasField("graph") or not model.graph.node:
        raise CheckpointError(f"{name} is not an ONNX model (it has no graph)")
    for op in model.opset_import:
        if op.domain not in ALLOWED_DOMAINS:
            raise CheckpointError(
                f"{name} imports the operator domain {op.domain!r}; only the standard ONNX domains are allowed"
            )
    if len(model.functions):
        raise CheckpointError(
            f"{name} defines its own functions ({model.functions[0].name!r}); only standard ONNX operators are allowed"
        )
    total = 0
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in ALLOWED_DOMAINS:
                raise CheckpointError(
                    f"{name} uses the custom operator {node.domain}.{node.op_type}; only standard ONNX operators are allowed"
                )
        for t in _tensors(graph):
            if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
                raise CheckpointError(
                    f"{name}: tensor {t.name!r} refers to external data; export with all weights inside the file"
                )
            total += _declared_bytes(t)
            if total > MAX_INITIALIZER_BYTES:
                raise CheckpointError(f"{name} declares more than {MAX_INITIALIZER_BYTES // 2**20} MB of weights")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - ValidationError messages are multi-line: keep the first
        raise CheckpointError(f"{name} is not a valid ONNX model: {str(exc).strip().splitlines()[0][:200]}") from None
    return model


def _providers() -> list[str]:
    import onnxruntime as ort

    have = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have]


def make_session(data: bytes, name: str):
    """An onnxruntime session from validated bytes: CUDA when present, else the CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=opts, providers=_providers())
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise CheckpointError(f"{name}: onnxruntime cannot load it: {str(exc).strip().splitlines()[0][:200]}") from None


@dataclass(frozen=True)
class Port:
    """One declared input or output: its name, and its shape with None for free dimensions."""

    name: str
    shape: tuple[int | None, ...]

    @classmethod
    def of(cls, arg) -> Port:
        return cls(arg.name, tuple(d if isinstance(d, int) and d > 0 else None for d in (arg.shape or ())))

    def fits(self, item: tuple[int, ...]) -> bool:
        """Does one item of this shape (the batch dimension aside) match the declaration? Unknown rank fits."""
        if not self.shape:
            return True
        return len(self.shape) == 1 + len(item) and all(d is None or d == w for d, w in zip(self.shape[1:], item))


class OnnxRunner:
    """One onnxruntime session with one float input: batches in chunks, fixed batch sizes padded."""

    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        self.session = make_session(data, name)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise CheckpointError(f"{name} takes {len(inputs)} inputs; it must take exactly one tensor")
        if inputs[0].type != "tensor(float)":
            raise CheckpointError(f"{name}: its input is {inputs[0].type}, expected tensor(float)")
        self.input = Port.of(inputs[0])
        self.outputs = [Port.of(o) for o in self.session.get_outputs()]
        b = self.input.shape[0] if self.input.shape else None
        self.batch = b or RUN_BATCH
        self.fixed_batch = b is not None

    def input_shape(self, sample: tuple[int, ...]) -> tuple[int, ...]:
        """Which of ``sample`` (per-item shape) or its flattening the input takes; raises if neither."""
        flat = (int(np.prod(sample)),)
        for shape in (sample, flat):
            if self.input.fits(shape):
                return shape
        want = f"(batch, {', '.join(map(str, sample))})" + (f" or (batch, {flat[0]})" if len(sample) > 1 else "")
        raise CheckpointError(f"{self.name} takes input of shape {_fmt(self.input.shape)}; expected {want}")

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run on x (N, ...) in chunks of the model's batch size; each output concatenated over N."""
        n, parts = len(x), []
        for i in range(0, n, self.batch):
            chunk = x[i : i + self.batch]
            real = len(chunk)
            if self.fixed_batch and real < self.batch:  # pad a fixed-size batch, drop the padding after
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - real, 0)])
            try:
                outs = self.session.run(None, {self.input.name: np.ascontiguousarray(chunk, np.float32)})
            except Exception as exc:  # noqa: BLE001 - onnxruntime's errors become one line
                raise CheckpointError(
                    f"{self.name} failed on a batch of {len(chunk)}: {str(exc).strip().splitlines()[0][:200]}"
                ) from None
            parts.append([np.asarray(o)[:real] for o in outs])
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


class OnnxVAE(ForeignVAE):
    """An imported ONNX encoder/decoder pair, explored like any built-in model."""

    kind = "onnx"

    def __init__(
        self,
        enc: bytes,
        dec: bytes,
        latent_dim: int,
        image_shape: tuple[int, int, int],
        encoder_outputs: str = "mu,logvar",
        decoder_output: str = "probabilities",
        names: tuple[str, str] = ("encoder.onnx", "decoder.onnx"),
    ) -> None:
        if encoder_outputs not in ENCODER_OUTPUTS:
            raise CheckpointError(
                f"encoder outputs must be one of {', '.join(ENCODER_OUTPUTS)}, got {encoder_outputs!r}"
            )
        if decoder_output not in DECODER_OUTPUTS:
            raise CheckpointError(f"decoder output must be one of {', '.join(DECODER_OUTPUTS)}, got {decoder_output!r}")
        super().__init__(foreign_config(image_shape, latent_dim), encoder_outputs == "mu,logvar", decoder_output)
        for data, name in zip((enc, dec), names):
            parse_onnx(data, name)
        self.encoder_outputs = encoder_outputs
        self._dec_bytes = dec
        self.enc, self.dec = OnnxRunner(enc, names[0]), OnnxRunner(dec, names[1])
        shape, z = tuple(self.config.in_shape), latent_dim
        self.enc_in = self.enc.input_shape(shape)
        self.dec.input_shape((z,))  # raises unless the decoder takes (batch, z)
        n_out = len(self.enc.outputs)
        if not (n_out == 1 or (n_out == 2 and self.stochastic)):
            raise CheckpointError(
                f"{names[0]} has {n_out} outputs; with --encoder-outputs {encoder_outputs} it must have "
                + ("1 (mu) or 2 (mu, logvar)" if self.stochastic else "1 (mu)")
            )
        want = z if (n_out == 2 or not self.stochastic) else 2 * z
        for port in self.enc.outputs:
            if not port.fits((want,)):
                raise CheckpointError(
                    f"{names[0]}: output {port.name!r} has shape {_fmt(port.shape)}, expected (batch, {want}) for latent dim {z}"
                )
        port = self.dec.outputs[0]
        if len(self.dec.outputs) != 1 or not (port.fits(shape) or port.fits((self.config.n_pixels,))):
            raise CheckpointError(
                f"{names[1]}: its output has shape {_fmt(port.shape)}, expected (batch, {', '.join(map(str, shape))}) or (batch, {self.config.n_pixels})"
            )

    def export_parts(self) -> list[tuple[str, nn.Module, list[int], str]]:
        """The decoder as torch layers for the in-browser exporter (raises ``NotExportable`` if it is no chain)."""
        from explorer.foreign.onnx_chain import onnx_chain

        net, final = onnx_chain(self._dec_bytes, self.decoder_output)
        return [("image", net, list(self.config.in_shape), final)]

    def encode_raw(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        outs = self.enc.run(x.reshape(len(x), *self.enc_in).numpy())
        z = self.latent_dim
        if len(outs) == 2:
            mu, logvar = outs
        elif self.stochastic:
            mu, logvar = outs[0][:, :z], outs[0][:, z:]
        else:
            mu, logvar = outs[0], None
        for arr, what in ((mu, "mu"), (logvar, "logvar")):
            if arr is not None and arr.shape != (len(x), z):
                raise CheckpointError(f"{self.enc.name} returned {what} of shape {arr.shape}, expected ({len(x)}, {z})")
        return torch.from_numpy(np.array(mu, np.float32)), None if logvar is None else torch.from_numpy(
            np.array(logvar, np.float32)
        )

    def decode_raw(self, z: Tensor) -> Tensor:
        (out,) = self.dec.run(z.numpy())
        if out.size != len(z) * self.config.n_pixels:
            raise CheckpointError(
                f"{self.dec.name} returned {out.shape}, expected ({len(z)}, {', '.join(map(str, self.config.in_shape))})"
            )
        return torch.from_numpy(np.array(out, np.float32)).reshape(len(z), *self.config.in_shape)
