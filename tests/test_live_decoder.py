"""The in-browser decoder: the JS kernels against torch in real Chromium, and a live drag on /traverse."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import torch
from torch import nn

from explorer.export import export_decoder
from tests.browser import CHROMIUM, browser, exceptions, serve, wait_idle
from tests.helpers import model_for

ROOT = Path(__file__).resolve().parents[1]
KERNELS = (ROOT / "explorer" / "ui" / "live_decoder" / "kernels.js").read_text()
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")
DECODE_JS = """([spec, b64, codes, ys, k]) => {
  const bin = atob(b64), u = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
  const W = new Float32Array(u.buffer);
  return codes.map((z, i) => Array.from(LatentKernels.decode(spec, W, z, k, ys[i])));
}"""
CANVAS_JS = "() => document.querySelector('[data-role=decoded]').toDataURL()"


@pytest.fixture(scope="module")
def chromium():
    with browser() as b:  # one Playwright per process: the kernel page and the app page share it
        yield b


@pytest.fixture(scope="module")
def kernel_page(chromium):
    page = chromium.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=KERNELS)
    yield page
    page.close()


def odd_decoder_model():
    """A conv model whose decoder uses every other op the exporter knows: BN, Conv2d, LeakyReLU, ELU, Tanh."""
    model = model_for("vae-conv", {"latent_dim": 5}, seed=1)
    model.decoder = nn.Sequential(
        nn.Linear(5, 8 * 7 * 7),
        nn.BatchNorm1d(8 * 7 * 7),
        nn.ELU(0.7),
        nn.Unflatten(1, (8, 7, 7)),
        nn.ConvTranspose2d(8, 4, 4, 2, 1),
        nn.BatchNorm2d(4),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(4, 4, 3, 2, 1, output_padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 1, 3, 1, 1),
        nn.Sigmoid(),
    )
    for m in model.decoder:
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def browser_vs_torch(page, model, output: int = 0) -> float:
    """Largest |browser - torch| pixel difference over 16 random codes (and classes)."""
    g = torch.Generator().manual_seed(output)
    z = 2 * torch.randn(16, model.latent_dim, generator=g)
    ys = torch.randint(0, model.config.n_classes, (16,), generator=g) if model.conditional else None
    with torch.no_grad():
        want = model.decode(z, ys) if output == 0 else model.decode_modality(output, z)
    exp = export_decoder(model, "test")
    got = page.evaluate(
        DECODE_JS,
        [
            exp.spec,
            base64.b64encode(exp.blob).decode(),
            z.tolist(),
            ys.tolist() if ys is not None else [None] * 16,
            output,
        ],
    )
    got = torch.tensor(got).reshape(want.shape)
    assert got.min() >= 0 and got.max() <= 1
    return float((got - want).abs().max())


@pytest.mark.browser
@needs_chromium
def test_browser_decode_matches_torch_for_every_kind(kernel_page, kind):
    model = model_for(kind, {"latent_dim": 4}, seed=0).eval()
    outputs = 2 if hasattr(model, "decoder2") else 1
    for k in range(outputs):  # the joint VAE: both modalities
        assert browser_vs_torch(kernel_page, model, k) <= 1e-4


@pytest.mark.browser
@needs_chromium
def test_browser_decode_matches_torch_with_batchnorm_conv2d_and_other_activations(kernel_page):
    assert browser_vs_torch(kernel_page, odd_decoder_model()) <= 1e-4


@pytest.mark.browser
@needs_chromium
def test_browser_slerp_matches_torch(kernel_page):
    from explorer.models import BaseVAE

    a, b = torch.randn(6), torch.randn(6)
    want = BaseVAE.interpolate(a, b, 5, "slerp")
    got = kernel_page.evaluate(
        "([a, b]) => [0, .25, .5, .75, 1].map(t => LatentKernels.slerp(a, b, t))", [a.tolist(), b.tolist()]
    )
    assert torch.allclose(torch.tensor(got, dtype=torch.float32), want, atol=1e-5)


RECEIVED: list[bytes] = []  # every ForwardMsg the app page's websocket received, in order
SIDEBAR = 1  # delta_path[0] of the sidebar's elements


def _keep_frame(payload: bytes | str) -> None:
    if isinstance(payload, bytes):
        RECEIVED.append(payload)


def runs_since(n: int) -> tuple[list[int], int]:
    """The script runs that finished in the frames received after the first ``n``, and the sidebar deltas sent."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msgs = [ForwardMsg.FromString(f) for f in RECEIVED[n:]]
    finished = [m.script_finished for m in msgs if m.WhichOneof("type") == "script_finished"]
    sidebar = sum(list(m.metadata.delta_path[:1]) == [SIDEBAR] for m in msgs if m.WhichOneof("type") != "new_session")
    return finished, sidebar


@pytest.fixture(scope="module")
def app_page(tmp_path_factory, chromium):
    import numpy as np

    from explorer.analysis.arithmetic import save_vector, vectors_dir
    from explorer.checkpoint import content_hash

    home = tmp_path_factory.mktemp("home")
    ckpt = content_hash((ROOT / "checkpoints" / "mnist-vae-mlp-z2.safetensors").read_bytes())
    with pytest.MonkeyPatch.context() as mp:  # a saved attribute vector for the default model
        mp.setenv("EXPLORER_HOME", str(home))
        save_vector(ckpt, "up", np.array([0.0, 2.0], dtype=np.float32))
        assert vectors_dir(ckpt).is_dir()
    with serve(env={"EXPLORER_HOME": str(home)}) as url:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        RECEIVED.clear()
        page.on("websocket", lambda ws: ws.on("framereceived", _keep_frame))
        page.goto(f"{url}/traverse")
        wait_idle(page)
        page.wait_for_selector(".lx-live[data-ready='1']", timeout=90_000)
        yield page


@pytest.mark.browser
@needs_chromium
def test_drag_changes_the_image_while_the_button_is_down(app_page):
    page = app_page
    sliders = page.locator("[data-role='latent-slider']")
    assert sliders.count() == 2 and sliders.first.get_attribute("aria-label").startswith("z")
    assert " · KL " in sliders.first.get_attribute("aria-label")
    grid_src = "() => [...document.querySelectorAll('[data-testid=stImage]')].find(e => e.innerText.startsWith('Rows:')).querySelector('img').src"
    grid_before = page.evaluate(grid_src)
    box = sliders.first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = page.evaluate(CANVAS_JS)
    page.mouse.move(x, y)
    page.mouse.down()
    images = set()
    for i in range(1, 21):
        page.mouse.move(x + i * 6, y)
        page.wait_for_timeout(20)
        images.add(page.evaluate(CANVAS_JS))
    assert before not in images and len(images) >= 5, "the image follows the hand while the button is down"
    page.mouse.up()
    page.wait_for_function(f"(b) => ({grid_src})() !== b", arg=grid_before, timeout=30_000)  # the code came back
    wait_idle(page)
    assert not exceptions(page)


@pytest.mark.browser
@needs_chromium
def test_arrow_key_moves_the_live_slider(app_page):
    page = app_page
    before = page.evaluate(CANVAS_JS)
    page.locator("[data-role='latent-slider']").nth(1).focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"(b) => ({CANVAS_JS})() !== b", arg=before, timeout=5_000)
    wait_idle(page)
    assert not exceptions(page)


@pytest.mark.browser
@needs_chromium
def test_randomize_and_reset_move_the_live_sliders(app_page):
    page = app_page
    values = "() => [...document.querySelectorAll('[data-role=latent-slider]')].map(e => e.value).join()"
    rev = "() => document.querySelector('.lx-live').getAttribute('data-rev')"

    def click(name: str) -> None:  # the server sets a new code: the browser applies it under a new rev
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        r, n = page.evaluate(rev), len(RECEIVED)
        page.get_by_role("button", name=name).click()
        page.wait_for_function(f"(r) => ({rev})() !== r", arg=r, timeout=30_000)
        wait_idle(page)
        finished, sidebar = runs_since(n)
        # The press reruns only the sliders' fragment: no full run of the page, nothing re-sent to the sidebar
        assert ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY in finished, finished
        assert ForwardMsg.FINISHED_SUCCESSFULLY not in finished and sidebar == 0, (name, finished, sidebar)

    click("Reset")  # earlier tests moved the sliders
    start, image = page.evaluate(values), page.evaluate(CANVAS_JS)
    click("Randomize")
    assert page.evaluate(values) != start
    page.wait_for_function(f"(b) => ({CANVAS_JS})() !== b", arg=image, timeout=5_000)
    click("Reset")
    assert page.evaluate(values) == start
    page.wait_for_function(f"(b) => ({CANVAS_JS})() === b", arg=image, timeout=5_000)
    assert not exceptions(page)


@pytest.mark.browser
@needs_chromium
def test_saved_vector_is_an_extra_live_slider(app_page):
    page = app_page
    vec = page.locator("[data-role='vector-slider']")
    assert vec.count() == 1 and vec.first.get_attribute("aria-label") == "vector: up"
    before = page.evaluate(CANVAS_JS)
    vec.first.focus()
    for _ in range(10):  # +0.5 strength: z1 moves by 1.0
        page.keyboard.press("ArrowRight")
    page.wait_for_function(f"(b) => ({CANVAS_JS})() !== b", arg=before, timeout=5_000)
    wait_idle(page)
    assert not exceptions(page)


def test_traverse_falls_back_to_server_decoding_when_export_fails(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import explorer.ui.live_decoder as live
    from explorer.export import NotExportable

    def refuse(model, key=""):
        raise NotExportable("Bilinear is not exportable to the browser decoder")

    monkeypatch.setattr(live, "export_decoder", refuse)
    live._cached_export.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/traverse.py").run()
    live._cached_export.clear()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Decoding on the server" in c.value and "Bilinear" in c.value for c in at.caption)
    assert any(s.label.startswith("z") and " · KL " in s.label for s in at.slider)


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_hover_on_the_raw_map_decodes_the_point_under_the_pointer(app_page):
    from tests.plotly_click import click_point

    page = app_page
    page.locator("[data-testid='stSidebarNav'] a", has_text="Latent map").click()
    page.wait_for_selector(".st-key-latentmap_chart .js-plotly-plot", timeout=300_000)  # a worker computes the map
    wait_idle(page)
    page.wait_for_selector(".lx-live[data-ready='1']", timeout=60_000)
    box = page.locator(".st-key-latentmap_chart .js-plotly-plot").bounding_box()
    seen = [(page.evaluate(CANVAS_JS), "")]
    for fx, fy in ((0.3, 0.3), (0.6, 0.7)):
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.wait_for_function(f"(b) => ({CANVAS_JS})() !== b", arg=seen[-1][0], timeout=5_000)
        seen.append((page.evaluate(CANVAS_JS), page.inner_text(".lx-code")))
    seen = seen[1:]
    (img0, code0), (img1, code1) = seen
    assert img0 != img1 and code0 != code1
    z0 = [float(v) for v in code0[5:-1].split(",")]
    z1 = [float(v) for v in code1[5:-1].split(",")]
    assert z1[0] > z0[0] and z1[1] < z0[1]  # right and down on the map: x grows, y shrinks
    click_point(page, "7", 3)  # clicking still selects a point
    page.wait_for_function("() => document.body.innerText.includes('7 · index')", timeout=30_000)
    wait_idle(page)
    assert not exceptions(page)
