"""Shared fixtures: small real data, an isolated home dir, the model registry, and the app in a browser."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))

from explorer.data import Split, load_dataset  # noqa: E402
from explorer.models import model_names  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Runs, uploads and caches go to a temporary folder, never the user's."""
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")


@pytest.fixture(autouse=True)
def _torch_threads():
    """Two torch threads in every test, though an AppTest run sets the app server's one (explorer/ui/sidebar.py)."""
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def small(mnist) -> tuple[Split, Split]:
    """1,000 train and 500 test MNIST images: enough to see learning in a second."""
    return mnist.train.subset(1000, seed=1), mnist.test.subset(500, seed=1)


@pytest.fixture(params=model_names())
def kind(request) -> str:
    """Every registered model kind."""
    return request.param


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app served on a free loopback port for one test module, with a home dir of its own."""
    from tests.browser import serve

    with serve(env={"EXPLORER_HOME": str(tmp_path_factory.mktemp("home"))}) as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url, request):
    """One Chromium page for a test module; the module's VIEWPORT (a dict) sets its size."""
    from tests.browser import browser

    with browser() as b:
        yield b.new_page(viewport=getattr(request.module, "VIEWPORT", {"width": 1400, "height": 1000}))
