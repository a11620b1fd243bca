"""The sidebar every page shares: model picker (shipped, trained, uploaded) and dataset picker."""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from explorer.catalog import DEFAULT_CHECKPOINT, Entry, list_checkpoints, uploads_dir
from explorer.checkpoint import MAX_FILE_BYTES, content_hash, model_from_bytes
from explorer.data import DATASET_NAMES, Dataset
from explorer.device import pick_device
from explorer.errors import ExplorerError
from explorer.models import BaseVAE
from explorer.storage import atomic_write_bytes
from explorer.ui.navigation import PIXELATED_CSS
from explorer.ui.resources import cached_dataset, cached_model
from explorer.ui.state import PENDING_MODEL

MODEL_KEY = "sidebar_model"
DATASET_KEY = "sidebar_dataset"
UPLOAD_KEY = "sidebar_upload"
UPLOAD_DONE_KEY = "sidebar_upload_done"
UPLOAD_ERROR_KEY = "sidebar_upload_error"


@dataclass(frozen=True)
class Current:
    """What the sidebar selected: the checkpoint, its loaded model and the dataset to show."""

    entry: Entry
    model: BaseVAE
    meta: dict
    dataset: Dataset
    mtime_ns: int  # the checkpoint file's, for cache keys that must change when the file does


def open_model(name: str) -> None:
    """Select the checkpoint ``name`` in the sidebar on the next run (call st.rerun after)."""
    st.session_state[PENDING_MODEL] = name


def save_upload(name: str, data: bytes) -> str:
    """Validate an uploaded checkpoint fully, then store it; returns its catalog name."""
    if len(data) > MAX_FILE_BYTES:
        raise ExplorerError(f"{name} is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    model_from_bytes(data, name)  # raises CheckpointError with a clear message
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.rsplit(".", 1)[0])[:60] or "upload"
    final = f"{stem}-{content_hash(data)[:8]}"
    atomic_write_bytes(uploads_dir() / f"{final}.safetensors", data)
    return final


def _upload_ui() -> None:
    with st.expander("Upload a checkpoint"):
        st.caption(f"A Latent Explorer `.safetensors` file, up to {MAX_FILE_BYTES // 2**20} MB. Pickles are refused.")
        up = st.file_uploader("Checkpoint file", key=UPLOAD_KEY, label_visibility="collapsed")
        if up is None or st.session_state.get(UPLOAD_DONE_KEY) == up.file_id:
            return
        st.session_state[UPLOAD_DONE_KEY] = up.file_id
        try:
            if up.size > MAX_FILE_BYTES:  # checked before reading it into memory
                raise ExplorerError(f"{up.name} is {up.size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
            open_model(save_upload(up.name, up.getvalue()))
            st.rerun()
        except ExplorerError as exc:
            st.session_state[UPLOAD_ERROR_KEY] = str(exc)
    if err := st.session_state.get(UPLOAD_ERROR_KEY):
        st.error(f"Upload refused: {err}")


def sidebar_ui() -> None:
    """Draw the model and dataset pickers in the sidebar."""
    st.html(PIXELATED_CSS)  # small images scale up crisp, not blurred
    entries = {e.name: e for e in list_checkpoints()}
    with st.sidebar:
        if not entries:
            st.error("No checkpoints found. Train one with `python -m explorer train` or upload one.")
            _upload_ui()
            return
        pending = st.session_state.pop(PENDING_MODEL, None)
        if pending in entries:
            st.session_state[MODEL_KEY] = pending
            st.session_state.pop(UPLOAD_ERROR_KEY, None)
        if st.session_state.get(MODEL_KEY) not in entries:
            st.session_state[MODEL_KEY] = DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in entries else next(iter(entries))
        st.selectbox("Model", list(entries), key=MODEL_KEY)
        entry = entries[st.session_state[MODEL_KEY]]
        st.caption(entry.label)
        own = entry.meta["dataset"]
        options = [own] + [d for d in DATASET_NAMES if d != own]
        st.selectbox("Dataset", options, key=f"{DATASET_KEY}_{entry.name}",
                     help="The model's own dataset comes first; others with the same image size also work.")  # fmt: skip
        _upload_ui()
        st.caption(f"Decoding on **{pick_device().type}**")


def current() -> Current:
    """The selected model and dataset, loaded; stops the page with a message if unusable."""
    entries = {e.name: e for e in list_checkpoints()}
    name = st.session_state.get(MODEL_KEY)
    if name not in entries:
        st.info("Pick or upload a model in the sidebar to begin.")
        st.stop()
    entry = entries[name]
    mtime_ns = entry.path.stat().st_mtime_ns
    try:
        model, meta = cached_model(str(entry.path), mtime_ns)
    except ExplorerError as exc:
        st.error(f"Cannot load {entry.name}: {exc}")
        st.stop()
    ds_name = st.session_state.get(f"{DATASET_KEY}_{entry.name}", meta["dataset"])
    try:
        dataset = cached_dataset(ds_name)
    except ExplorerError as exc:
        st.warning(f"{exc} Showing {meta['dataset']} instead.")
        dataset = cached_dataset(meta["dataset"])
    if dataset.in_shape != model.config.in_shape:
        st.warning(f"{dataset.name} images are {dataset.in_shape}, this model takes {model.config.in_shape}; "
                   f"showing {meta['dataset']} instead.")  # fmt: skip
        dataset = cached_dataset(meta["dataset"])
    return Current(entry, model, meta, dataset, mtime_ns)
