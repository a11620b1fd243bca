"""Where checkpoints live: shipped ones in the repo, trained and uploaded ones in the home dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from explorer.checkpoint import read_metadata
from explorer.errors import CheckpointError
from explorer.storage import home_dir

SUFFIX = ".safetensors"
DEFAULT_CHECKPOINT = "mnist-vae-mlp-z2"


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
    source: str  # shipped | trained | uploaded
    meta: dict

    @property
    def label(self) -> str:
        m = self.meta
        return f"{m['model']} · z={m['latent_dim']} · trained on {m['dataset']} · {self.source}"


def list_checkpoints() -> list[Entry]:
    """Every valid checkpoint, shipped first. Unreadable files are skipped (the UI reports uploads itself)."""
    out = []
    for source, folder in (("shipped", shipped_dir()), ("trained", runs_dir()), ("uploaded", uploads_dir())):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                out.append(Entry(path.stem, path, source, read_metadata(path)))
            except CheckpointError:
                continue
    return out


def checkpoint_name(path: str | Path) -> str:
    """A checkpoint's catalog name: its file name without ``.safetensors``."""
    return Path(path).name.removesuffix(".safetensors")


def resolve(name_or_path: str) -> Path:
    """A checkpoint path from a path or the name of a known checkpoint."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for entry in list_checkpoints():
        if entry.name == name_or_path:
            return entry.path
    raise CheckpointError(f"no checkpoint file or known checkpoint named {name_or_path!r}")


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
