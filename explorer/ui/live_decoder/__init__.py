"""A ``st.components.v2`` component that decodes in the browser on every input event.

The decoder is exported once per checkpoint hash (``explorer.export``); its float32 weights are
served from Streamlit's media endpoint, so the rerun's ``data`` holds only a URL and the small
op list. The browser fetches them once per hash and keeps them for the tab's lifetime. On
release a slider sends its values back as component state: ``{"rev": int, "values": [...]}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import streamlit as st

from explorer.export import DecoderExport, NotExportable, export_decoder
from explorer.models import BaseVAE

NAME = "live_decoder"
_components: dict[str, Callable[..., Any]] = {}


def packaged_component(name: str, package: str, js: Sequence[str], css: str) -> Callable[..., Any]:
    """Register a v2 component once per process, its JS files (joined in order) and CSS read from ``package``."""
    if name not in _components:
        files = resources.files(package)
        code = "\n".join(files.joinpath(f).read_text() for f in js)
        _components[name] = st.components.v2.component(
            name, js=code, css=files.joinpath(css).read_text(), isolate_styles=False
        )
    return _components[name]


def _mount() -> Callable[..., Any]:
    """The live decoder component (assets read from the package)."""
    return packaged_component(NAME, __package__, ("kernels.js", "component.js"), "live_decoder.css")


@st.cache_resource(max_entries=12, show_spinner=False)
def _cached_export(key: str, _model: BaseVAE) -> DecoderExport | str:
    """The export of the model whose checkpoint hash is ``key``, or why it cannot be exported."""
    try:
        return export_decoder(_model, key)
    except NotExportable as exc:
        return str(exc)


@dataclass
class LiveModel:
    """What the component needs to decode one model: ``payload`` for ``data``, weight size."""

    payload: dict
    n_bytes: int


def live_model(model: BaseVAE, key: str) -> LiveModel | str:
    """The browser-side decoder for ``model`` (checkpoint hash ``key``), or a one-line reason it has none."""
    if os.environ.get("EXPLORER_LIVE_DECODER", "on").lower() in ("off", "0", "no"):
        return "live decoding is turned off (EXPLORER_LIVE_DECODER=off)"
    exp = _cached_export(key, model)
    if isinstance(exp, str):
        return exp
    from streamlit import runtime

    # Content-addressed: the same URL every rerun and for every session; the browser fetches it once.
    url = runtime.get_instance().media_file_mgr.add(exp.blob, "application/octet-stream", f"{NAME}.{key}")
    return LiveModel({"key": key, "url": url, "spec": exp.spec}, exp.n_bytes)


def fallback_caption(reason: str) -> None:
    """The caption a page shows when it decodes on the server instead."""
    st.caption(f"Decoding on the server (each change is a round trip): {reason}")


def slider_spec(
    label: str, lo: float, hi: float, step: float = 0.01, dim: int | None = None, vec: Sequence[float] | None = None
) -> dict:
    """One slider: sets latent ``dim``, or adds value × ``vec`` (an attribute vector)."""
    out: dict[str, Any] = {"label": label, "min": float(lo), "max": float(hi), "step": float(step)}
    if dim is not None:
        out["dim"] = int(dim)
    if vec is not None:
        out["vec"] = [float(v) for v in vec]
    return out


def _payload(
    lm: LiveModel,
    mode: str,
    rev: int,
    y: int | None,
    outputs: Sequence[int],
    captions: Sequence[str],
    size: int,
    **extra: Any,
) -> dict:
    """The component's ``data`` for one mode: the model, what every mode shares, and the mode's own fields."""
    return {
        "mode": mode,
        "model": lm.payload,
        "rev": int(rev),
        "y": y,
        "outputs": list(outputs),
        "captions": list(captions),
        "size": size,
        **extra,
    }


def live_sliders(
    lm: LiveModel,
    code: Sequence[float],
    sliders: list[dict],
    values: Sequence[float],
    rev: int,
    key: str,
    on_change: Callable[[], None] | None = None,
    y: int | None = None,
    outputs: Sequence[int] = (0,),
    captions: Sequence[str] = ("decode(z)",),
    size: int = 240,
) -> Any:
    """Sliders decoded live. ``code`` is the base code; slider i sets its dim or adds its vector.

    ``values`` are applied in the browser only when ``rev`` changes (Reset, Randomize, a new
    start code), so a rerun does not fight the hand. Returns the component result; its
    ``values`` state is ``{"rev", "values"}`` after a release.
    """
    data = _payload(
        lm,
        "sliders",
        rev,
        y,
        outputs,
        captions,
        size,
        code=[float(v) for v in code],
        sliders=sliders,
        values=[float(v) for v in values],
    )
    return _mount()(key=key, data=data, on_values_change=on_change or (lambda: None))


def live_interpolation(
    lm: LiveModel,
    a: Sequence[float],
    b: Sequence[float],
    method: str,
    t: float,
    rev: int,
    key: str,
    on_change: Callable[[], None] | None = None,
    y: int | None = None,
    caption: str = "decode(path(t))",
    size: int = 200,
) -> Any:
    """A t scrubber from code ``a`` (t=0) to ``b`` (t=1), ``method`` lerp or slerp, decoded live."""
    interp = {"a": [float(v) for v in a], "b": [float(v) for v in b], "method": method, "t": float(t)}
    data = _payload(lm, "interp", rev, y, [0], [caption], size, interp=interp)
    return _mount()(key=key, data=data, on_values_change=on_change or (lambda: None))


def live_hover(
    lm: LiveModel,
    plot_key: str,
    axes: Sequence[int],
    code: Sequence[float],
    key: str,
    y: int | None = None,
    caption: str = "decode(z) under the pointer",
    size: int = 168,
) -> Any:
    """Decode the latent point under the pointer on the raw-axes Plotly chart keyed ``plot_key``."""
    data = _payload(
        lm,
        "hover",
        0,
        y,
        [0],
        [caption],
        size,
        plot_key=plot_key,
        axes=[int(a) for a in axes],
        code=[float(v) for v in code],
    )
    return _mount()(key=key, data=data)


def live_map_hover(model: BaseVAE, ckpt: str, plot_key: str, axes: Sequence[int], y: int | None, key: str) -> None:
    """Beside a raw 2-D latent map: the decoded point under the pointer, or nothing where export fails."""
    lm = live_model(model, ckpt)
    if isinstance(lm, str):
        st.caption(f"No hover preview: {lm}")
        return
    live_hover(lm, plot_key, axes, [0.0] * model.latent_dim, key=key, y=y)
    st.caption("Hover over the map: the point under the pointer, decoded in your browser. Click still selects.")


def interpolation_scrubber(model: BaseVAE, ckpt: str, z0: Any, z1: Any, y: int | None, key: str) -> None:
    """Drag t from 0 to 1 along the lerp or slerp path from ``z0`` to ``z1``, decoded live in the browser."""
    from explorer.analysis.traverse import decode_codes
    from explorer.ui.widgets import show_image

    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    method = c1.radio("Scrub the path", ["lerp", "slerp"], horizontal=True, key=key + "_method")
    lm = live_model(model, ckpt)
    with c2:
        if isinstance(lm, LiveModel):
            live_interpolation(lm, z0.tolist(), z1.tolist(), method, 0.5, 0, key=key, y=y, size=140)
            return
        fallback_caption(lm)
        t = st.slider("t", 0.0, 1.0, 0.5, 0.05, key=key + "_t")
        path = model.interpolate(z0.float(), z1.float(), 21, "linear" if method == "lerp" else "slerp")
        show_image(decode_codes(model, path[round(t * 20)][None], y)[0], width=140, caption="decode(path(t))")


def shared_sliders(
    model: BaseVAE, ckpt: str, z: Any, dims: Sequence[int], labels: Sequence[str], captions: Sequence[str], key: str
) -> None:
    """One set of sliders (latent ``dims`` of code ``z``) decoding every modality side by side, live."""
    lm = live_model(model, ckpt)
    if isinstance(lm, str):
        fallback_caption(lm)
        return
    sliders = [slider_spec(lab, -3.0, 3.0, 0.01, dim=d) for d, lab in zip(dims, labels)]
    n_out = len(lm.payload["spec"]["outputs"])
    live_sliders(
        lm,
        [float(v) for v in z],
        sliders,
        [float(z[d]) for d in dims],
        0,
        key=key,
        outputs=range(n_out),
        captions=list(captions)[:n_out],
        size=160,
    )


def released_values(result: Any) -> tuple[int, list[float]] | None:
    """(rev, values) the browser sent on the last release, or None."""
    if isinstance(result, dict):  # st.session_state[key] inside a callback
        state = result.get("values")
    else:
        state = getattr(result, "values", None) if result is not None else None
    if not isinstance(state, dict) or not isinstance(state.get("values"), list):
        return None
    try:
        return int(state.get("rev", -1)), [float(v) for v in state["values"]]
    except (TypeError, ValueError):
        return None
