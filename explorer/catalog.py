"""Where checkpoints live: shipped ones in the repo, trained and uploaded ones in the home dir."""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from explorer.checkpoint import check_dataset_fits, content_hash, model_from_bytes
from explorer.checkpoint_header import MAX_FILE_BYTES, read_metadata
from explorer.data import load_dataset
from explorer.errors import CheckpointError, ExplorerError
from explorer.storage import StorageError, atomic_write_bytes, atomic_write_json, home_dir

SUFFIX = ".safetensors"
OWNERS_SUFFIX = ".owners.json"  # beside each upload: the session tokens that uploaded it
DEFAULT_CHECKPOINT = "mnist-vae-mlp-z2"
DEFAULT_UPLOADS_MB = 512  # the uploads folder's cap; $EXPLORER_UPLOADS_MB changes it


def shipped_dir() -> Path:
    """The repo's checkpoints/ folder (or $EXPLORER_CHECKPOINTS)."""
    return Path(os.environ.get("EXPLORER_CHECKPOINTS") or Path(__file__).resolve().parents[1] / "checkpoints")


def runs_dir() -> Path:
    """Checkpoints trained in the app."""
    return home_dir() / "runs"


def uploads_dir() -> Path:
    """Checkpoints users uploaded (after validation)."""
    return home_dir() / "uploads"


@dataclass(frozen=True)
class Entry:
    """One selectable checkpoint."""

    name: str
    path: Path
    source: str  # shipped | trained | uploaded | imported (ONNX) | trusted code (--model)
    meta: dict

    @property
    def label(self) -> str:
        m = self.meta
        return f"{m['model']} · z={m['latent_dim']} · trained on {m['dataset']} · {self.source}"

    @property
    def foreign(self) -> bool:
        """Trained outside this app (an imported ONNX pair or a trusted torch model): no training recipe."""
        return "foreign" in self.meta


@dataclass(frozen=True)
class Broken:
    """A stored file that is not a usable checkpoint, and why (shown in the sidebar, never fatal)."""

    name: str
    path: Path
    source: str
    error: str


_scan_cache: dict[Path, tuple[int, int, dict | str]] = {}  # path -> (mtime_ns, size, meta or error)
_scan_lock = threading.Lock()


def _check_entry(source: str, meta: dict) -> None:
    if source == "uploaded" and not _builtin_dataset(meta["dataset"]):
        raise CheckpointError(f"names dataset {meta['dataset']!r}; uploads must name a built-in dataset")


def scan_checkpoints() -> tuple[list[Entry], list[Broken]]:
    """Every stored checkpoint, shipped first: (valid entries, broken files).

    Reads only headers, and each file's header only once per (path, mtime, size).
    """
    good: list[Entry] = []
    broken: list[Broken] = []
    for source, folder in (("shipped", shipped_dir()), ("trained", runs_dir()), ("uploaded", uploads_dir())):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                st = path.stat()
            except OSError:
                continue  # deleted while listing
            with _scan_lock:
                hit = _scan_cache.get(path)
            if hit is None or hit[:2] != (st.st_mtime_ns, st.st_size):
                try:
                    found: dict | str = read_metadata(path)
                    _check_entry(source, found)
                except CheckpointError as exc:
                    found = str(exc)
                hit = (st.st_mtime_ns, st.st_size, found)
                with _scan_lock:
                    _scan_cache[path] = hit
            if isinstance(hit[2], dict):
                good.append(Entry(path.stem, path, source, hit[2]))
            else:
                broken.append(Broken(path.stem, path, source, hit[2]))
    from explorer.foreign.store import foreign_entries

    good.extend(Entry(*e) for e in foreign_entries())  # imported ONNX pairs and the trusted --model
    return good, broken


def list_checkpoints() -> list[Entry]:
    """Every valid checkpoint, shipped first. Broken files are left out (``scan_checkpoints`` lists them)."""
    return scan_checkpoints()[0]


def checkpoint_name(path: str | Path) -> str:
    """A checkpoint's catalog name: its file name without ``.safetensors``."""
    return Path(path).name.removesuffix(".safetensors")


def resolve(name_or_path: str) -> Path:
    """A checkpoint path from a path or the name of a known checkpoint (with or without ``.safetensors``)."""
    path = Path(name_or_path)
    if path.is_file() or path.is_symlink():
        return path
    stem = name_or_path.removesuffix(SUFFIX)
    for entry in list_checkpoints():
        if entry.name == stem:
            return entry.path
    if path.exists():  # a folder: let the loader say why it is not a checkpoint
        return path
    raise CheckpointError(f"no checkpoint file or known checkpoint named {name_or_path!r}")


def _builtin_dataset(name: str) -> bool:
    from explorer.data import DATASET_NAMES
    from explorer.data.paired import PAIRED_NAMES

    return name in DATASET_NAMES or name in PAIRED_NAMES


def uploads_cap_bytes() -> int:
    """The most bytes the uploads folder may hold."""
    try:
        return int(float(os.environ.get("EXPLORER_UPLOADS_MB", DEFAULT_UPLOADS_MB)) * 2**20)
    except ValueError:
        return DEFAULT_UPLOADS_MB * 2**20


def uploads_size() -> int:
    """Bytes of checkpoints in the uploads folder."""
    folder = uploads_dir()
    return sum(p.stat().st_size for p in folder.glob(f"*{SUFFIX}")) if folder.is_dir() else 0


def _owners_path(path: Path) -> Path:
    return path.with_name(path.stem + OWNERS_SUFFIX)


def upload_owners(path: Path) -> list[str]:
    """The session tokens that uploaded this file (empty when unknown)."""
    try:
        owners = json.loads(_owners_path(path).read_text())
    except (OSError, ValueError):
        return []
    return [o for o in owners if isinstance(o, str)] if isinstance(owners, list) else []


def save_upload(name: str, data: bytes, owner: str = "") -> str:
    """Validate an uploaded checkpoint fully, then store it once per content; returns its catalog name.

    The same bytes uploaded again (under any name) reuse the stored file and add ``owner`` to it.
    Refused: anything ``model_from_bytes`` refuses, a dataset that is not built in (the server
    never reads a path named in an upload), an image shape or class count that disagrees with
    that dataset, and a file that would take the folder past its cap.
    """
    if len(data) > MAX_FILE_BYTES:
        raise CheckpointError(f"{name} is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    model, meta = model_from_bytes(data, name)  # raises CheckpointError with a clear message
    if not _builtin_dataset(meta["dataset"]):
        raise CheckpointError(f"{name} names dataset {meta['dataset']!r}; uploads must name a built-in dataset")
    try:
        ds = load_dataset(meta["dataset"])
    except ExplorerError:
        ds = None  # not installed here: the page says so when the model is chosen
    if ds is not None:
        check_dataset_fits(model, ds, name)
    digest = content_hash(data)[:8]
    folder = uploads_dir()
    same = [p for p in folder.glob(f"*-{digest}{SUFFIX}") if p.read_bytes() == data] if folder.is_dir() else []
    if same:
        path = same[0]
    else:
        used, cap = uploads_size(), uploads_cap_bytes()
        if used + len(data) > cap:
            raise CheckpointError(
                f"the uploads folder is full ({used / 2**20:.0f} of {cap / 2**20:.0f} MB); delete an upload first"
            )
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.rsplit(".", 1)[0]).strip(".-")[:60] or "upload"
        try:
            path = atomic_write_bytes(folder / f"{stem}-{digest}{SUFFIX}", data, exclusive=True)
        except StorageError as exc:
            raise CheckpointError(f"could not store {name}: {exc.reason}") from None
    if owner:
        owners = upload_owners(path)
        if owner not in owners:
            try:
                atomic_write_json(_owners_path(path), [*owners, owner])
            except StorageError as exc:
                raise CheckpointError(f"could not store {name}: {exc.reason}") from None
    return path.stem


def delete_upload(name: str, owner: str) -> None:
    """Remove ``owner``'s claim on an upload; the file goes when nobody else uploaded it."""
    path = uploads_dir() / f"{Path(name).name}{SUFFIX}"
    owners = upload_owners(path)
    if not path.is_file() or owner not in owners:
        raise ExplorerError(f"{name} is not one of your uploads")
    rest = [o for o in owners if o != owner]
    if rest:
        atomic_write_json(_owners_path(path), rest)
    else:
        path.unlink(missing_ok=True)
        _owners_path(path).unlink(missing_ok=True)


def find_baseline(entry: Entry, entries: list[Entry]) -> Entry | None:
    """The same model trained without anchors: same kind, dataset, latent size, seed, epochs and settings."""

    def recipe(m: dict) -> tuple:
        cfg = {k: v for k, v in m["config"].items() if k not in ("anchors", "anchor_rate", "anchor_score")}
        return (
            m["model"],
            m["dataset"],
            m["latent_dim"],
            m["seed"],
            m["epochs"],
            str(sorted(cfg.items())),
            str(m.get("training")),
        )

    want = recipe(entry.meta)
    for e in entries:
        if e.path != entry.path and not e.meta["config"].get("anchors") and recipe(e.meta) == want:
            return e
    return None
