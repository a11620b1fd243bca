"""The sidebar every page shares: model picker (shipped, trained, uploaded) and dataset picker."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import streamlit as st
import torch

from explorer.catalog import (
    DEFAULT_CHECKPOINT,
    Entry,
    delete_upload,
    save_upload,
    scan_checkpoints,
    upload_owners,
    uploads_cap_bytes,
    uploads_size,
)
from explorer.checkpoint_header import MAX_FILE_BYTES
from explorer.data import DATASET_NAMES, Dataset
from explorer.device import device_problem, pick_device
from explorer.errors import ExplorerError
from explorer.models import BaseVAE
from explorer.storage import sweep_stale_tmp
from explorer.ui.foreign import default_entry, onnx_upload_ui
from explorer.ui.navigation import PIXELATED_CSS
from explorer.ui.resources import cached_dataset, cached_model
from explorer.ui.state import PENDING_MODEL

__all__ = ["Current", "current", "save_upload", "sidebar_ui"]  # save_upload lives in explorer.catalog

log = logging.getLogger(__name__)
MODEL_KEY = "sidebar_model"
DATASET_KEY = "sidebar_dataset"
UPLOAD_KEY = "sidebar_upload"
OWNER_KEY = "sidebar_owner"  # this browser session's token: its uploads are "mine"
SHOW_KEY = "sidebar_show"
SHOW_ALL, SHOW_MINE = "everyone's", "mine"
UPLOAD_DONE_KEY = "sidebar_upload_done"
UPLOAD_ERROR_KEY = "sidebar_upload_error"
SERVER_TORCH_THREADS = 1  # intra-op threads of the app server's torch (workers set their own)
LINKED_KEY = "sidebar_linked_model"  # the ?model= link already applied, so the picker stays free after it


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


@st.cache_resource(show_spinner=False)
def _startup() -> int:
    """Once per server: one torch thread per script run; remove temporary files left by killed saves.

    Every session's script runs share this process, and heavy work runs in workers: torch's
    intra-op pool only made the small decodes here spin on the other core. Measured on 2 busy
    cores, a z=16 traversal grid took 10.4 ms of CPU (85 ms wall) with 2 threads, 1.6 ms (3.4 ms) with 1.
    """
    torch.set_num_threads(SERVER_TORCH_THREADS)  # holds for every thread started after it
    return len(sweep_stale_tmp())


def _owner() -> str:
    if OWNER_KEY not in st.session_state:
        st.session_state[OWNER_KEY] = uuid.uuid4().hex
    return st.session_state[OWNER_KEY]


def _upload_ui(entries: dict[str, Entry]) -> None:
    with st.expander("Upload a checkpoint"):
        st.caption(
            f"A Latent Explorer `.safetensors` file, up to {MAX_FILE_BYTES // 2**20} MB. Pickles are refused. "
            "Uploads are shared with everyone using this server."
        )
        up = st.file_uploader("Checkpoint file", key=UPLOAD_KEY, label_visibility="collapsed")
        if up is not None and st.session_state.get(UPLOAD_DONE_KEY) != up.file_id:
            st.session_state[UPLOAD_DONE_KEY] = up.file_id
            try:
                if up.size > MAX_FILE_BYTES:  # checked before reading it into memory
                    raise ExplorerError(
                        f"{up.name} is {up.size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB"
                    )
                open_model(save_upload(up.name, up.getvalue(), _owner()))
                st.rerun()
            except ExplorerError as exc:
                st.session_state[UPLOAD_ERROR_KEY] = str(exc)
        if err := st.session_state.get(UPLOAD_ERROR_KEY):
            st.error(f"Upload refused: {err}")
        mine = [e for e in entries.values() if e.source == "uploaded" and _owner() in upload_owners(e.path)]
        if mine:
            st.caption(
                f"Your uploads (the folder holds {uploads_size() / 2**20:.0f} of {uploads_cap_bytes() / 2**20:.0f} MB):"
            )
        for e in mine:
            c1, c2 = st.columns([4, 1])
            c1.caption(e.name)
            if c2.button("", icon=":material/delete:", key=f"sidebar_del_{e.name}", help=f"Delete {e.name}"):
                try:
                    delete_upload(e.name, _owner())
                except ExplorerError as exc:
                    st.session_state[UPLOAD_ERROR_KEY] = str(exc)
                st.rerun()


def _visible(entries: dict[str, Entry]) -> dict[str, Entry]:
    """Everything, or the shipped and trained models plus this session's own uploads."""
    if st.session_state.get(SHOW_KEY, SHOW_ALL) == SHOW_ALL:
        return entries
    me = _owner()
    return {n: e for n, e in entries.items() if e.source != "uploaded" or me in upload_owners(e.path)}


def sidebar_ui() -> None:
    """Draw the model and dataset pickers in the sidebar."""
    st.html(PIXELATED_CSS)  # small images scale up crisp, not blurred
    _startup()
    good, broken = scan_checkpoints()
    all_entries = {e.name: e for e in good}
    with st.sidebar:
        if problem := device_problem():
            st.warning(problem)
        if not all_entries:
            st.error("No checkpoints found. Train one with `python -m explorer train` or upload one.")
            _upload_ui(all_entries)
            onnx_upload_ui(set())
            return
        pending = st.session_state.pop(PENDING_MODEL, None)
        if pending in all_entries:
            st.session_state[MODEL_KEY] = pending
            st.session_state.pop(UPLOAD_ERROR_KEY, None)
            st.session_state[SHOW_KEY] = SHOW_ALL  # a model just chosen elsewhere must be in the list
        if any(e.source == "uploaded" for e in good):
            st.radio("Uploads shown", [SHOW_ALL, SHOW_MINE], horizontal=True, key=SHOW_KEY)
        entries = _visible(all_entries)
        linked = st.query_params.get("model")  # a link that presets the model (/learn's "explore" links)
        if linked in entries and st.session_state.get(LINKED_KEY) != linked:
            st.session_state[MODEL_KEY] = st.session_state[LINKED_KEY] = linked
        if st.session_state.get(MODEL_KEY) not in entries:
            st.session_state[MODEL_KEY] = default_entry(entries) or (
                DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in entries else next(iter(entries))
            )
        st.selectbox("Model", list(entries), key=MODEL_KEY)
        entry = entries[st.session_state[MODEL_KEY]]
        st.caption(entry.label)
        own = entry.meta["dataset"]
        from explorer.data import datasets_of_shape  # only datasets of the model's image shape

        fits = datasets_of_shape(entry.meta["config"]["in_shape"])
        options = [own] + [d for d in DATASET_NAMES if d != own and d in fits]
        st.selectbox(
            "Dataset",
            options,
            key=f"{DATASET_KEY}_{entry.name}",
            help="The model's own dataset comes first; others with the same image size also work.",
        )
        _upload_ui(all_entries)
        onnx_upload_ui(set(all_entries))
        if broken:
            with st.expander(f"{len(broken)} stored file(s) cannot be used"):
                for b in broken:
                    st.caption(f"**{b.name}** ({b.source}): {b.error.removeprefix(f'{b.path.name}: ')}")
        st.caption(f"Decoding on **{pick_device().type}**")


def current() -> Current:
    """The selected model and dataset, loaded; stops the page with a message if unusable."""
    entries = {e.name: e for e in scan_checkpoints()[0]}
    name = st.session_state.get(MODEL_KEY)
    if name not in entries:
        st.info("Pick or upload a model in the sidebar to begin.")
        st.stop()
    entry = entries[name]
    mtime_ns = entry.path.stat().st_mtime_ns
    try:
        model, meta = cached_model(str(entry.path), mtime_ns)
    except (ExplorerError, OSError) as exc:
        st.error(f"Cannot load this model: {exc}")
        st.stop()
    except Exception:  # noqa: BLE001 - users get a line, the server log the traceback
        log.exception("loading %s", entry.path)
        st.error(f"Cannot load {entry.name}: an internal error (details are in the server log).")
        st.stop()
    ds_name = st.session_state.get(f"{DATASET_KEY}_{entry.name}", meta["dataset"])
    try:
        dataset = cached_dataset(ds_name)
        if dataset.in_shape != model.config.in_shape and ds_name != meta["dataset"]:
            st.warning(
                f"{dataset.name} images are {dataset.in_shape}, this model takes {model.config.in_shape}; "
                f"showing {meta['dataset']} instead."
            )
            dataset = cached_dataset(meta["dataset"])
    except ExplorerError as exc:
        if ds_name == meta["dataset"]:
            st.error(f"Cannot show {entry.name}: {exc}")
            st.stop()
        st.warning(f"{exc} Showing {meta['dataset']} instead.")
        try:
            dataset = cached_dataset(meta["dataset"])
        except ExplorerError as exc2:
            st.error(f"Cannot show {entry.name}: {exc2}")
            st.stop()
    if dataset.in_shape != model.config.in_shape:
        st.error(f"{entry.name} takes images {model.config.in_shape}, but {dataset.name} has {dataset.in_shape}.")
        st.stop()
    return Current(entry, model, meta, dataset, mtime_ns)
