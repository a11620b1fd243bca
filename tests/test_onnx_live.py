"""Imported ONNX decoders in the browser: a simple chain is exported to the live decoder, others fall back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.export import NotExportable, export_decoder
from explorer.foreign.onnx_model import OnnxVAE
from tests.test_live_decoder import KERNELS, browser_vs_torch, needs_chromium
from tests.test_onnx import TinyDecoder, TinyEncoder, export


class SigmoidDecoder(nn.Module):
    """z -> probabilities, MatMul/Add style (no bias folded into Gemm), ending in a Sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(2, 24)), nn.Parameter(torch.randn(24))
        self.out = nn.Linear(24, 784)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.leaky_relu(z @ self.w1 + self.b1, 0.1)
        return torch.sigmoid(self.out(torch.tanh(h))).view(-1, 1, 28, 28)


class ConvDecoder(nn.Module):
    """z -> logits through a transposed conv: not a chain the ONNX converter covers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.up = nn.Linear(2, 4 * 14 * 14), nn.ConvTranspose2d(4, 1, 2, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(z).view(-1, 4, 14, 14))


def imported(tmp_path, decoder: nn.Module, output: str) -> OnnxVAE:
    torch.manual_seed(3)
    enc = export(TinyEncoder(), torch.rand(3, 1, 28, 28), tmp_path / "enc.onnx", ["mu", "logvar"])
    dec = export(decoder, torch.randn(3, 2), tmp_path / "dec.onnx", ["x"])
    return OnnxVAE(enc.read_bytes(), dec.read_bytes(), 2, (1, 28, 28), decoder_output=output).eval()


@pytest.mark.parametrize("decoder, output", [(TinyDecoder, "logits"), (SigmoidDecoder, "probabilities")])
def test_chain_decoder_rebuilt_in_torch_matches_onnxruntime(tmp_path, decoder, output):
    torch.manual_seed(0)
    model = imported(tmp_path, decoder(), output)
    ((_, net, shape, final),) = model.export_parts()
    z = 2 * torch.randn(16, 2)  # (B, z)
    with torch.no_grad():
        ours = torch.sigmoid(net(z)).view(16, *shape)
    assert final == "sigmoid"
    assert (ours - model.decode(z)).abs().max() <= 1e-5
    assert export_decoder(model, "k").spec["outputs"][0]["final"] == "sigmoid"


def test_conv_onnx_decoder_is_refused_with_its_op(tmp_path):
    model = imported(tmp_path, ConvDecoder(), "logits")
    with pytest.raises(NotExportable, match="ConvTranspose"):
        export_decoder(model, "k")


@pytest.mark.browser
@needs_chromium
def test_browser_decodes_an_imported_onnx_model_like_onnxruntime(tmp_path):
    from tests.browser import browser

    model = imported(tmp_path, TinyDecoder(), "logits")
    with browser() as b:
        page = b.new_page()
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=KERNELS)
        assert browser_vs_torch(page, model) <= 1e-4


@pytest.mark.slow
def test_an_imported_model_is_mapped_by_a_worker_that_gets_its_files_as_bytes(tmp_path, monkeypatch):
    """Jobs ship a model's files to the worker: for an imported pair, its sidecar and both ONNX files."""
    from explorer import cluster
    from explorer.analysis.projection import ProjectionParams, cache_key, load_cached
    from explorer.checkpoint import blobs_hash, model_blobs
    from explorer.foreign.store import import_onnx
    from explorer.jobs import JobRunner

    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path / "home"))
    enc = export(TinyEncoder(), torch.rand(3, 1, 28, 28), tmp_path / "enc.onnx", ["mu", "logvar"])
    dec = export(TinyDecoder(), torch.randn(3, 2), tmp_path / "dec.onnx", ["x"])
    sidecar = import_onnx(
        enc,
        dec,
        latent_dim=2,
        image_shape=(1, 28, 28),
        dataset="mnist",
        name="far",
        decoder_output="logits",
        taken=set(),
    )
    blobs = model_blobs(sidecar)
    assert set(blobs) == {"model.json", "encoder.onnx", "decoder.onnx"}
    p = ProjectionParams(method="pca", limit=300)
    runner = JobRunner(tmp_path / "jobs", client=cluster.get_client())
    try:
        job = runner.submit("projection", {"checkpoint": str(sidecar), "dataset": "mnist", "projection": p.to_dict()})
        st = runner.wait(job, timeout=300)
        assert st.state == "done", st
        proj = load_cached(cache_key(blobs_hash(blobs), "mnist", p))
        assert proj is not None and proj.embedding.shape == (300, 2)
    finally:
        cluster.shutdown()
