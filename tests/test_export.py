"""The decoder exporter: every registry kind exports, BatchNorm folds exactly, unknown layers are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explorer.errors import ExplorerError
from explorer.export import NotExportable, export_decoder, export_module
from tests.helpers import model_for


def test_every_kind_exports_all_its_decoders(kind):
    model = model_for(kind, {"latent_dim": 3}, seed=0).eval()
    exp = export_decoder(model, "abc")
    spec = exp.spec
    assert spec["key"] == "abc" and spec["latent_dim"] == 3
    assert (
        exp.n_bytes
        == 4 * spec["n_floats"]
        == 4 * sum(p.numel() for n, p in model.named_parameters() if n.startswith(("decoder.", "decoder2.")))
    )
    assert spec["n_classes"] == (model.config.n_classes if model.conditional else 0)
    assert spec["outputs"][0]["shape"] == list(model.config.in_shape) and spec["outputs"][0]["final"] == "sigmoid"
    assert spec["outputs"][0]["in"] == 3 + spec["n_classes"]
    assert len(spec["outputs"]) == (2 if hasattr(model, "decoder2") else 1)


def test_unknown_layer_is_refused_with_its_name():
    model = model_for("vae-mlp", {"latent_dim": 2}, seed=0).eval()
    model.decoder[1] = nn.GELU()
    with pytest.raises(NotExportable, match="GELU is not exportable") as info:
        export_decoder(model)
    assert isinstance(info.value, ExplorerError)  # pages and the CLI show it as one line


def test_training_mode_and_grouped_convs_are_refused():
    with pytest.raises(NotExportable, match="eval mode"):
        export_decoder(model_for("vae-mlp", {"latent_dim": 2}))
    from explorer.export import _Blob

    grouped = nn.Sequential(nn.Unflatten(1, (4, 2, 2)), nn.Conv2d(4, 4, 3, padding=1, groups=2))
    with pytest.raises(NotExportable, match="groups"):
        export_module(grouped, 16, [4, 2, 2], "sigmoid", _Blob())


def test_batchnorm_is_folded_into_the_linear_before_it():
    from explorer.export import _Blob

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5)).eval()
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    net[1].weight.data.uniform_(0.5, 2)
    blob = _Blob()
    out = export_module(net, 3, [5], "none", blob)
    assert [op["op"] for op in out["ops"]] == ["linear"]  # one op: BN is gone
    w = np.frombuffer(blob.bytes(), "<f4")
    op = out["ops"][0]
    W, b = w[op["w"] : op["w"] + 15].reshape(5, 3), w[op["b"] : op["b"] + 5]
    x = torch.randn(7, 3)
    assert np.allclose(x.numpy() @ W.T + b, net(x).detach().numpy(), atol=1e-5)


def test_reshape_must_keep_the_size():
    from explorer.export import _Blob

    with pytest.raises(NotExportable, match="cannot reshape"):
        export_module(nn.Sequential(nn.Linear(2, 12), nn.Unflatten(1, (1, 3, 3))), 2, [1, 3, 3], "sigmoid", _Blob())
