"""The trusted torch adapter: ``--model pkg.module:factory`` on the CLI only, never from a file or an upload."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from explorer.catalog import list_checkpoints
from explorer.checkpoint import load_for_use
from explorer.cli import main
from explorer.errors import CheckpointError
from explorer.foreign.adapter import TRUSTED_ENV
from explorer.foreign.store import adapters_dir

USER_MODULE = '''
import torch
from torch import nn


class PlainVAE(nn.Module):
    """The user's own model: nothing from this project."""

    latent_dim = 3
    image_shape = (1, 28, 28)

    def __init__(self, deterministic=False):
        super().__init__()
        torch.manual_seed(0)
        self.deterministic = deterministic
        self.enc = nn.Linear(784, 6)
        self.dec = nn.Linear(3, 784)

    def encode(self, x):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return (mu, None) if self.deterministic else (mu, logvar.clamp(-4, 2))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).view(-1, 1, 28, 28)


def factory():
    return PlainVAE()


def deterministic():
    return PlainVAE(deterministic=True)


def not_a_vae():
    return object()
'''
EVIL_MODULE = """
import pathlib
pathlib.Path(__file__).with_name("IMPORTED").write_text("evil module was imported")

def factory():
    raise SystemExit("never")
"""


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """usermod.py and evilmod.py in the working directory, as a user's own code would be."""
    (tmp_path / "usermod.py").write_text(textwrap.dedent(USER_MODULE))
    (tmp_path / "evilmod.py").write_text(textwrap.dedent(EVIL_MODULE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    yield tmp_path
    os.environ.pop(TRUSTED_ENV, None)  # the CLI sets it in-process; do not leak it into other tests


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_model_flag_on_evaluate_encode_embed(user_code, capsys):
    rc, out, err = cli(capsys, "evaluate", "--model", "usermod:factory")
    assert rc == 0, err
    report = json.loads(out)
    assert report["n"] == 1000 and len(report["kl_per_dim"]) == 3 and report["kl"] > 0

    rc, out, err = cli(capsys, "encode", "--model", "usermod:factory", "--out", "codes.npz")
    assert rc == 0, err
    import torch
    import usermod

    from explorer.data import load_dataset

    with torch.no_grad():
        mu_ref = usermod.factory().encode(load_dataset("mnist").test.images)[0]
    np.testing.assert_allclose(np.load(user_code / "codes.npz")["mu"], mu_ref.numpy(), atol=1e-5)

    rc, out, err = cli(capsys, "embed", "--model", "usermod:factory", "--out", "map.npz")
    assert rc == 0, err
    assert np.load(user_code / "map.npz")["embedding"].shape == (1000, 2)


def test_mu_only_model_has_no_kl(user_code, capsys):
    rc, out, err = cli(capsys, "evaluate", "--model", "usermod:deterministic")
    assert rc == 0, err
    assert json.loads(out)["kl"] == 0.0
    entry = next(e for e in list_checkpoints() if e.source == "trusted code")
    model, _ = load_for_use(entry.path)
    assert model.stochastic is False and model.has_prior is False


@pytest.mark.parametrize(
    "spec, match",
    [
        ("usermod", "pkg.module:factory"),
        ("usermod:nothing", "no callable"),
        ("nosuchmod:factory", "cannot import"),
        ("usermod:not_a_vae", "lacks encode, decode, latent_dim, image_shape"),
    ],
)
def test_bad_specs_get_one_line(user_code, capsys, spec, match):
    rc, out, err = cli(capsys, "evaluate", "--model", spec)
    assert rc == 2 and match in err and len(err.strip().splitlines()) == 1 and out == ""


def test_serve_passes_the_spec_in_the_environment_only(user_code, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execv", lambda exe, argv: calls.append((argv, dict(os.environ))))
    assert main(["serve", "--model", "usermod:factory", "--port", "8999", "--headless"]) == 0
    argv, env = calls[0]
    assert env[TRUSTED_ENV] == "usermod:factory" and "usermod" not in " ".join(argv)
    names = [e.name for e in list_checkpoints() if e.source == "trusted code"]
    assert names == ["trusted-usermod-factory"]

    monkeypatch.setenv(TRUSTED_ENV, "evilmod:factory")  # left over from elsewhere: serve without --model clears it
    assert main(["serve", "--port", "8999"]) == 0
    assert TRUSTED_ENV not in calls[1][1]
    assert not (user_code / "IMPORTED").exists()


def test_module_names_from_files_are_never_imported(user_code):
    """A sidecar naming a module (as an upload or a hostile home folder could) is neither listed nor loaded."""
    adapters_dir().mkdir(parents=True, exist_ok=True)
    sidecar = adapters_dir() / "trusted-evil.json"
    from explorer.foreign.store import FORMAT

    meta = {
        "format": FORMAT,
        "name": "trusted-evil",
        "model": "torch-adapter",
        "latent_dim": 3,
        "dataset": "mnist",
        "config": {"in_shape": [1, 28, 28], "latent_dim": 3},
        "split": "imported",
        "seed": 0,
        "epochs": 0,
        "history": [],
        "test_metrics": {},
        "versions": {},
        "created": "",
        "foreign": {"kind": "torch-adapter", "spec": "evilmod:factory", "fingerprint": ""},
    }
    sidecar.write_text(json.dumps(meta))
    assert "trusted-evil" not in {e.name for e in list_checkpoints()}
    with pytest.raises(CheckpointError, match="loads only under `explorer serve --model"):
        load_for_use(sidecar)
    os.environ[TRUSTED_ENV] = "usermod:factory"  # another model is trusted: still not this one
    assert "trusted-evil" not in {e.name for e in list_checkpoints()}
    with pytest.raises(CheckpointError):
        load_for_use(sidecar)
    assert not (user_code / "IMPORTED").exists()


def test_app_opens_on_the_trusted_model(user_code, capsys):
    from streamlit.testing.v1 import AppTest

    assert cli(capsys, "evaluate", "--model", "usermod:factory")[0] == 0  # registers it, as serve does
    root = Path(__file__).resolve().parents[1]
    for page in (None, "pages/traverse.py", "pages/generate.py"):
        at = AppTest.from_file(str(root / "app.py"), default_timeout=120).run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert at.sidebar.selectbox[0].value == "trusted-usermod-factory"  # opens selected
        assert len(at.image) >= 1
