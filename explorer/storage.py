"""Atomic writes and the per-user data folder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def home_dir() -> Path:
    """Where runs, uploads and caches live: $EXPLORER_HOME or ~/.cache/latent-explorer."""
    path = Path(os.environ.get("EXPLORER_HOME") or Path.home() / ".cache" / "latent-explorer")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file beside ``path``, fsync, then rename over it.

    A crash or a full disk leaves the old file intact and no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """``atomic_write_bytes`` of pretty JSON."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
