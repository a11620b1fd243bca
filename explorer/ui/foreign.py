"""Sidebar parts for models trained elsewhere: import an ONNX pair; prefer the trusted ``--model``."""

from __future__ import annotations

import streamlit as st

from explorer.catalog import Entry
from explorer.data import DATASET_NAMES
from explorer.errors import ExplorerError
from explorer.ui.state import PENDING_MODEL
from explorer.ui.widgets import lazy_expander

P = "sidebar_onnx_"  # session-state prefix owned by this module
TRUSTED_SOURCE = "trusted code"
SCORE_LIMIT = 1000  # test images scored at import: bounded work in the script thread


def default_entry(entries: dict[str, Entry]) -> str | None:
    """The trusted ``--model`` the app was served with, if any: it opens selected."""
    return next((name for name, e in entries.items() if e.source == TRUSTED_SOURCE), None)


def _import(taken: set[str]) -> str:
    from explorer.foreign.onnx_model import MAX_ONNX_BYTES
    from explorer.foreign.store import clean_name, import_onnx_bytes

    gen = st.session_state.get(P + "gen", 0)
    enc, dec = st.session_state.get(f"{P}enc{gen}"), st.session_state.get(f"{P}dec{gen}")
    if enc is None or dec is None:
        raise ExplorerError("choose both an encoder and a decoder .onnx file")
    for up in (enc, dec):
        if up.size > MAX_ONNX_BYTES:  # checked before reading it into memory
            raise ExplorerError(
                f"{up.name} is {up.size / 2**20:.0f} MB; ONNX files are limited to {MAX_ONNX_BYTES // 2**20} MB"
            )
    try:
        shape = tuple(int(v) for v in st.session_state[P + "shape"].split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise ExplorerError(f"image shape wants C,H,W (e.g. 1,28,28), got {st.session_state[P + 'shape']!r}")
    name = clean_name(st.session_state[P + "name"].strip() or enc.name.rsplit(".", 1)[0])
    import_onnx_bytes(
        enc.getvalue(),
        dec.getvalue(),
        int(st.session_state[P + "z"]),
        shape,
        st.session_state[P + "dataset"],
        name,
        st.session_state[P + "enc_out"],
        st.session_state[P + "dec_out"],
        taken=taken,
        sources=(enc.name, dec.name),
        score_limit=SCORE_LIMIT,
    )
    return name


def onnx_upload_ui(taken: set[str]) -> None:
    """An expander that imports an ONNX encoder/decoder pair (validated and probed like ``explorer import-onnx``)."""
    # Built only while open: its nine widgets cost ~5 ms of the shared server on every full rerun of every page.
    with lazy_expander("Import an ONNX VAE", P + "open") as is_open:
        if not is_open:
            return
        st.caption(
            "A VAE from any framework, exported to ONNX as an encoder (images → μ, log σ²) and a decoder "
            "(z → images). Only standard operators; no external data. See the README."
        )
        gen = st.session_state.get(P + "gen", 0)  # bumped after an import: fresh, empty uploaders
        st.file_uploader("Encoder (.onnx)", type=["onnx"], key=f"{P}enc{gen}")
        st.file_uploader("Decoder (.onnx)", type=["onnx"], key=f"{P}dec{gen}")
        c1, c2 = st.columns(2)
        c1.number_input("Latent size", 1, 64, 2, key=P + "z")
        c2.text_input("Image shape C,H,W", "1,28,28", key=P + "shape")
        st.selectbox("Trained on", DATASET_NAMES, key=P + "dataset")
        st.radio(
            "Encoder outputs",
            ["mu,logvar", "mu"],
            horizontal=True,
            key=P + "enc_out",
            help="mu: a deterministic encoder, explored like an autoencoder (no KL)",
        )
        st.radio("Decoder outputs", ["probabilities", "logits"], horizontal=True, key=P + "dec_out")
        st.text_input("Name", "", key=P + "name", placeholder="default: the encoder's file name")
        if st.button("Import", key=P + "go", icon=":material/upload:"):
            try:
                with st.spinner("Validating and probing…"):
                    st.session_state[PENDING_MODEL] = _import(taken)  # the sidebar selects it next run
                st.session_state.pop(P + "error", None)
                st.session_state[P + "gen"] = gen + 1
                st.rerun()
            except ExplorerError as exc:
                st.session_state[P + "error"] = str(exc)
        if err := st.session_state.get(P + "error"):
            st.error(f"Import refused: {err}")
