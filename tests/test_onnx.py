"""Bring your own VAE (issue #19): ONNX pairs from outside this project, through the CLI and every page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from explorer.catalog import list_checkpoints
from explorer.checkpoint import load_for_use
from explorer.cli import main
from explorer.errors import CheckpointError
from explorer.foreign.onnx_model import MAX_INITIALIZER_BYTES, parse_onnx
from explorer.foreign.store import import_onnx

Z = 2


class TinyEncoder(nn.Module):
    """A conv encoder unlike any of this project's models: images -> (mu, logvar)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 4, stride=4), nn.Tanh(), nn.Flatten())  # (B, 4*7*7)
        self.head = nn.Linear(4 * 7 * 7, 2 * Z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.conv(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-6, 2)


class TinyDecoder(nn.Module):
    """z -> 28x28 logits (exported raw: --decoder-output logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(Z, 32), nn.ELU(), nn.Linear(32, 784))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)


def export(module: nn.Module, example: torch.Tensor, path: Path, outputs: list[str]) -> Path:
    axes = {"input": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}
    torch.onnx.export(
        module.eval(),
        (example,),
        str(path),
        input_names=["input"],
        output_names=outputs,
        dynamic_axes=axes,
        dynamo=False,
    )
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An encoder/decoder pair trained for a few steps on MNIST, exported with torch.onnx.export."""
    from explorer.data import load_dataset

    torch.manual_seed(0)
    enc, dec = TinyEncoder(), TinyDecoder()
    x = load_dataset("mnist").train.images[:512]
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=3e-3)
    for _ in range(40):
        mu, logvar = enc(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = nn.functional.binary_cross_entropy_with_logits(dec(z), x, reduction="sum") / len(x)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        opt.zero_grad()
        (recon + kl).backward()
        opt.step()
    d = tmp_path_factory.mktemp("onnx")
    e = export(enc, torch.rand(3, 1, 28, 28), d / "enc.onnx", ["mu", "logvar"])
    g = export(dec, torch.randn(3, Z), d / "dec.onnx", ["logits"])
    return e, g, enc, dec


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def import_args(enc, dec, *extra: str) -> list[str]:
    return [
        "import-onnx",
        "--encoder",
        str(enc),
        "--decoder",
        str(dec),
        "--latent-dim",
        str(Z),
        "--image-shape",
        "1,28,28",
        "--dataset",
        "mnist",
        *extra,
    ]


def test_exported_pair_through_the_whole_cli(pair, capsys, tmp_path):
    enc_path, dec_path, enc, dec = pair
    rc, out, err = cli(capsys, *import_args(enc_path, dec_path, "--name", "outside", "--decoder-output", "logits"))
    assert rc == 0, err
    line = json.loads(out)
    assert line["name"] == "outside" and line["stochastic"] is True
    assert "outside" in {e.name for e in list_checkpoints()}

    rc, out, _ = cli(capsys, "info", "outside")
    assert rc == 0 and "imported" in out and "checked by their hashes and a probe batch" in out
    rc, out, _ = cli(capsys, "info", "--json", "outside")
    meta = json.loads(out)
    assert rc == 0 and meta["model"] == "onnx" and meta["latent_dim"] == Z and meta["dataset"] == "mnist"

    rc, out, _ = cli(capsys, "evaluate", "outside")
    report = json.loads(out)
    assert rc == 0 and report["n"] == 1000 and np.isfinite(report["elbo"])
    assert report["kl"] > 0 and len(report["kl_per_dim"]) == Z
    assert report["elbo"] < 543.4  # better than decoding every image to 0.5 (784 ln 2): it learned something

    rc, out, _ = cli(capsys, "encode", "outside", "--out", str(tmp_path / "codes.npz"))
    codes = np.load(tmp_path / "codes.npz")
    from explorer.data import load_dataset

    x = load_dataset("mnist").test.images
    with torch.no_grad():
        mu_ref, logvar_ref = enc(x)
    assert rc == 0 and codes["mu"].shape == (1000, Z)
    np.testing.assert_allclose(codes["mu"], mu_ref.numpy(), atol=1e-4)  # onnxruntime agrees with torch
    np.testing.assert_allclose(codes["logvar"], logvar_ref.numpy(), atol=1e-4)

    rc, out, _ = cli(capsys, "embed", "outside", "--method", "pca", "--out", str(tmp_path / "map.npz"))
    assert rc == 0 and json.loads(out)["n"] == 1000
    assert np.load(tmp_path / "map.npz")["embedding"].shape == (1000, 2)

    model, _ = load_for_use(list_checkpoints()[-1].path)
    z = torch.randn(5, Z)
    with torch.no_grad():
        np.testing.assert_allclose(model.decode(z).numpy(), torch.sigmoid(dec(z)).numpy(), atol=1e-5)


def test_name_clash_and_bad_shape_argument(pair, capsys):
    enc_path, dec_path, *_ = pair
    assert cli(capsys, *import_args(enc_path, dec_path, "--name", "twice", "--decoder-output", "logits"))[0] == 0
    rc, _, err = cli(capsys, *import_args(enc_path, dec_path, "--name", "twice", "--decoder-output", "logits"))
    assert rc == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    rc, _, err = cli(capsys, *import_args(enc_path, dec_path, "--image-shape", "1,28"))
    assert rc == 2 and "C,H,W" in err


def test_a_name_beats_a_folder_of_the_same_name(pair, capsys, tmp_path, monkeypatch):
    enc_path, dec_path, *_ = pair
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bench").mkdir()  # as the repo's bench/ folder is, when run from the repo root
    assert cli(capsys, *import_args(enc_path, dec_path, "--name", "bench", "--decoder-output", "logits"))[0] == 0
    rc, out, err = cli(capsys, "info", "--json", "bench")
    assert rc == 0 and json.loads(out)["model"] == "onnx", err


def test_mu_only_encoder_is_an_autoencoder(pair, tmp_path):
    _, dec_path, enc, _ = pair

    class MuOnly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = enc

        def forward(self, x):
            return self.enc(x)[0]

    e = export(MuOnly(), torch.rand(2, 1, 28, 28), tmp_path / "mu.onnx", ["mu"])
    path = import_onnx(
        e,
        dec_path,
        latent_dim=Z,
        image_shape=(1, 28, 28),
        dataset="mnist",
        name="ae",
        encoder_outputs="mu",
        decoder_output="logits",
    )
    model, meta = load_for_use(path)
    assert model.stochastic is False and model.has_prior is False and meta["test_metrics"]["kl"] == 0
    from explorer.analysis.evaluate import evaluate
    from explorer.data import load_dataset

    assert evaluate(model, load_dataset("mnist").test.subset(200))["kl_per_dim"] == [0.0] * Z


def test_fixed_batch_and_flat_input_encoders(pair, tmp_path):
    """An encoder exported without dynamic axes (batch fixed at 3) taking flat (B, 784) input and giving one
    (B, 2z) output: batches are padded to 3 and split, and the codes equal torch's."""
    _, dec_path, enc, _ = pair

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = enc

        def forward(self, x_flat):
            return torch.cat(self.enc(x_flat.view(-1, 1, 28, 28)), dim=1)  # (B, 2z)

    path = tmp_path / "flat.onnx"
    torch.onnx.export(
        Flat().eval(), (torch.rand(3, 784),), str(path), input_names=["x"], output_names=["h"], dynamo=False
    )
    assert [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim] == [3, 784]
    model, _ = load_for_use(
        import_onnx(
            path, dec_path, latent_dim=Z, image_shape=(1, 28, 28), dataset="mnist", name="flat", decoder_output="logits"
        )
    )
    x = torch.rand(10, 1, 28, 28)  # 10 = 3 + 3 + 3 + 1 (padded)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        mu_ref, logvar_ref = enc(x)
    np.testing.assert_allclose(mu.numpy(), mu_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(logvar.numpy(), logvar_ref.numpy(), atol=1e-5)


# --- a decoder built by hand ---------------------------------------------------------------------------
def hand_decoder(w: np.ndarray, b: np.ndarray, out_shape=(1, 28, 28), extra_nodes=(), domain_opsets=()) -> bytes:
    """z (B, Z) -> sigmoid(z W + b) reshaped to (B, *out_shape), built node by node."""
    n = int(np.prod(out_shape))
    nodes = [
        helper.make_node("MatMul", ["z", "W"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["x"]),
        *extra_nodes,
    ]
    graph = helper.make_graph(
        nodes,
        "hand_decoder",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", w.shape[0]])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", *out_shape])],
        [
            numpy_helper.from_array(w.astype(np.float32), "W"),
            numpy_helper.from_array(b.astype(np.float32), "b"),
            numpy_helper.from_array(np.array([-1, *out_shape], np.int64), "shape"),
        ],
    )
    assert w.shape[1] == n
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), *domain_opsets])
    model.ir_version = 8
    return model.SerializeToString()


def test_hand_built_decoder_is_imported_and_decoded(pair, tmp_path):
    enc_path, *_ = pair
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 1, (Z, 784)), rng.normal(0, 1, 784)
    (tmp_path / "hand.onnx").write_bytes(hand_decoder(w, b))
    path = import_onnx(
        enc_path, tmp_path / "hand.onnx", latent_dim=Z, image_shape=(1, 28, 28), dataset="mnist", name="hand"
    )
    model, meta = load_for_use(path)
    z = rng.normal(0, 1, (7, Z)).astype(np.float32)
    want = (1 / (1 + np.exp(-(z @ w.astype(np.float32) + b.astype(np.float32))))).reshape(7, 1, 28, 28)
    np.testing.assert_allclose(model.decode(torch.from_numpy(z)).numpy(), want, atol=1e-5)
    assert meta["model"] == "onnx" and meta["foreign"]["decoder_output"] == "probabilities"


# --- hostile and broken files ----------------------------------------------------------------------------
def refused(enc: Path, dec: Path, tmp_path: Path, match: str, **kw) -> str:
    kw = {"latent_dim": Z, "image_shape": (1, 28, 28), "dataset": "mnist", "name": "hostile", **kw}
    with pytest.raises(CheckpointError, match=match) as info:
        import_onnx(enc, dec, **kw)
    assert not (tmp_path / "home" / "imported" / "hostile").exists()
    assert "hostile" not in {e.name for e in list_checkpoints()}
    return str(info.value)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def test_external_data_is_refused_and_never_opened(pair, tmp_path, monkeypatch):
    enc_path, *_ = pair
    model = onnx.load_model_from_string(hand_decoder(np.zeros((Z, 784)), np.zeros(784)))
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "/etc/passwd"), ("offset", "0"), ("length", str(Z * 784 * 4))):
        w.external_data.add(key=k, value=v)
    dec = write(tmp_path, "ext.onnx", model.SerializeToString())
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    msg = refused(enc_path, dec, tmp_path, "external data")
    assert "/etc/passwd" not in opened and "\n" not in msg


def test_custom_domain_op_is_refused(pair, tmp_path):
    enc_path, *_ = pair
    evil = helper.make_node("Exec", ["x"], ["y"], domain="com.evil")
    dec = write(
        tmp_path,
        "custom.onnx",
        hand_decoder(
            np.zeros((Z, 784)), np.zeros(784), extra_nodes=[evil], domain_opsets=[helper.make_opsetid("com.evil", 1)]
        ),
    )
    refused(enc_path, dec, tmp_path, "com.evil")
    with pytest.raises(CheckpointError, match="custom operator"):  # the node alone, without its opset import
        model = onnx.load_model_from_string(hand_decoder(np.zeros((Z, 784)), np.zeros(784), extra_nodes=[evil]))
        parse_onnx(model.SerializeToString(), "node.onnx")


def test_huge_initializer_is_refused_before_allocation(pair, tmp_path):
    enc_path, *_ = pair
    model = onnx.load_model_from_string(hand_decoder(np.zeros((Z, 784)), np.zeros(784)))
    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 12])  # 16 GiB declared, no data
    model.graph.initializer.append(huge)
    msg = refused(enc_path, write(tmp_path, "huge.onnx", model.SerializeToString()), tmp_path, "MB of weights")
    assert str(MAX_INITIALIZER_BYTES // 2**20) in msg


@pytest.mark.parametrize(
    "what, make, kw, match",
    [
        ("latent size", lambda: hand_decoder(np.zeros((3, 784)), np.zeros(784)), {}, r"expected \(batch, 2\)"),
        (
            "image shape",
            lambda: hand_decoder(np.zeros((Z, 64)), np.zeros(64), out_shape=(1, 8, 8)),
            {},
            "output has shape",
        ),
        (
            "declared vs --image-shape",
            lambda: hand_decoder(np.zeros((Z, 784)), np.zeros(784)),
            {"image_shape": (1, 8, 8)},
            r"takes input of shape",
        ),
        ("NaN output", lambda: hand_decoder(np.full((Z, 784), np.nan), np.zeros(784)), {}, "NaN"),
        (
            "not probabilities",
            lambda: hand_decoder(np.zeros((Z, 784)), np.zeros(784), out_shape=(1, 28, 28)),
            {"decoder_output": "probabilities", "_scale": True},
            r"not probabilities",
        ),
    ],
)
def test_wrong_shapes_and_bad_outputs_are_refused(pair, tmp_path, what, make, kw, match):
    enc_path, *_ = pair
    data = make()
    if kw.pop("_scale", False):  # multiply the sigmoid by 3: values up to 3, not probabilities
        model = onnx.load_model_from_string(data)
        model.graph.initializer.append(numpy_helper.from_array(np.array(3.0, np.float32), "three"))
        model.graph.node[2].output[0] = "p0"
        model.graph.node.insert(3, helper.make_node("Mul", ["p0", "three"], ["p"]))
        data = model.SerializeToString()
    refused(enc_path, write(tmp_path, "bad.onnx", data), tmp_path, match, **kw)


def test_garbage_and_pickles_are_refused(pair, tmp_path):
    enc_path, *_ = pair
    refused(enc_path, write(tmp_path, "junk.onnx", b"\x80\x04not a model at all"), tmp_path, "not an ONNX model")
    refused(enc_path, write(tmp_path, "empty.onnx", b""), tmp_path, "empty")


def test_tampered_import_is_refused_at_load(pair, capsys):
    enc_path, dec_path, *_ = pair
    assert cli(capsys, *import_args(enc_path, dec_path, "--name", "tamper", "--decoder-output", "logits"))[0] == 0
    entry = next(e for e in list_checkpoints() if e.name == "tamper")
    (entry.path.parent / "decoder.onnx").write_bytes(dec_path.read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match="changed since it was imported"):
        load_for_use(entry.path)


# --- every page on an imported model -----------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))


@pytest.fixture(scope="module")
def app_home(pair, tmp_path_factory):
    """A home folder holding one imported pair, shared by the page tests."""
    home = tmp_path_factory.mktemp("apphome")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_HOME", str(home))
        import_onnx(
            pair[0],
            pair[1],
            latent_dim=Z,
            image_shape=(1, 28, 28),
            dataset="mnist",
            name="outside",
            decoder_output="logits",
        )
    return home


def open_page(page: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["sidebar_model"] = "outside"
    at.run()
    if page:
        at.switch_page(page).run()
    return at


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_an_imported_model(app_home, monkeypatch, page):
    monkeypatch.setenv("EXPLORER_HOME", str(app_home))
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.sidebar.selectbox[0].value == "outside"
    if page in ("pages/traverse.py", "pages/generate.py", "pages/arithmetic.py", "pages/home.py"):
        assert len(at.image) >= 1  # decoded by onnxruntime
    if page == "pages/anchors.py":
        assert "trained outside this app" in at.info[0].value  # the training-only page says why it has nothing


def test_home_shows_the_imported_model(app_home, monkeypatch):
    monkeypatch.setenv("EXPLORER_HOME", str(app_home))
    at = open_page()
    assert not at.exception
    assert at.metric[0].value == "onnx" and at.metric[1].value == str(Z)
    assert len(at.image) >= 3  # originals, reconstructions, prior samples
    assert any("outside this app" in c.value for c in at.caption)


@pytest.mark.browser
@pytest.mark.slow
def test_sidebar_imports_a_pair_and_refuses_a_hostile_one(pair, tmp_path):
    """In Chromium: the sidebar imports a pair and selects it; a custom-domain decoder gets one line.

    (AppTest does not deliver this button's click in this app, so the browser drives it.)
    """
    import os
    import time

    from tests.browser import browser, exceptions, serve, wait_idle

    enc_path, dec_path, *_ = pair
    evil = helper.make_node("Exec", ["x"], ["y"], domain="com.evil")
    bad = write(
        tmp_path,
        "evil.onnx",
        hand_decoder(
            np.zeros((Z, 784)), np.zeros(784), extra_nodes=[evil], domain_opsets=[helper.make_opsetid("com.evil", 1)]
        ),
    )

    def import_pair(page, enc: Path, dec: Path, name: str, logits: bool) -> None:
        wait_idle(page)  # the last import's reruns have ended: no stale uploader beside the fresh ones
        if not page.get_by_text("Encoder (.onnx)").first.is_visible():
            page.get_by_text("Import an ONNX VAE").click()
        for label, f in (("Encoder (.onnx)", enc), ("Decoder (.onnx)", dec)):
            # Each uploader by its own label, and on only once it shows the file: the expander's second
            # input may not be there yet when the first upload's rerun is still drawing.
            up = page.locator("[data-testid='stSidebar'] [data-testid='stFileUploader']", has_text=label)
            up.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(f))
            chip = up.locator("[data-testid='stFileChip']", has_text=f.name)
            chip.wait_for(timeout=60_000)
            chip.locator("[data-testid='stFileChipIconSpinner']").wait_for(state="detached", timeout=60_000)
            wait_idle(page)
        if logits:
            page.get_by_text("logits", exact=True).click()
        box = page.get_by_label("Name")
        box.fill(name)
        box.press("Enter")
        wait_idle(page)
        time.sleep(0.5)
        page.get_by_role("button", name="Import").click()
        time.sleep(1)
        wait_idle(page, 120_000)

    with serve(env={"EXPLORER_HOME": os.environ["EXPLORER_HOME"]}) as url, browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_idle(page)
        import_pair(page, enc_path, dec_path, "from-the-sidebar", logits=True)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('onnx · z=2')",
            timeout=120_000,
        )
        assert "from-the-sidebar" in {e.name for e in list_checkpoints()}
        assert not exceptions(page)
        import_pair(page, enc_path, bad, "evil", logits=False)
        alert = page.locator("[data-testid='stSidebar'] [data-testid='stAlert']")
        alert.wait_for(timeout=30_000)
        assert "Import refused: evil.onnx imports the operator domain 'com.evil'" in alert.inner_text()
        assert "evil" not in {e.name for e in list_checkpoints()}
