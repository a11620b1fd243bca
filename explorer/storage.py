"""Atomic writes and the per-user data folder."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from explorer.errors import ExplorerError

TMP_SUFFIX = ".tmp"
STALE_TMP_SECONDS = 3600  # a hidden temporary file older than this is left over from a killed save


class StorageError(ExplorerError, OSError):
    """A write failed (full disk, unwritable folder): one line for the user, still an OSError."""


def home_dir() -> Path:
    """Where runs, uploads and caches live: $EXPLORER_HOME or ~/.cache/latent-explorer."""
    path = Path(os.environ.get("EXPLORER_HOME") or Path.home() / ".cache" / "latent-explorer")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _storage_error(path, exc) from None
    return path


def _storage_error(path: Path, exc: OSError) -> StorageError:
    err = StorageError(f"cannot write {path}: {exc.strerror or exc}")
    err.errno, err.reason = exc.errno, exc.strerror or str(exc)  # not strerror: it would change str(err)
    return err


def atomic_write_bytes(path: str | Path, data: bytes, exclusive: bool = False) -> Path:
    """Write to a temporary file beside ``path``, fsync, then rename over it.

    A crash or a full disk leaves the old file intact and no partial file behind; failures
    raise StorageError with one line. With ``exclusive``, an existing ``path`` is never
    replaced: the name gets a ``-2``, ``-3``... suffix instead (linked in place, so two writers
    racing for one name both keep their file). Returns the path written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _storage_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are meant to be shared
        if exclusive:
            path = _link_unique(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _storage_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _link_unique(tmp: str, path: Path) -> Path:
    """Hard-link ``tmp`` to ``path`` or the first free ``path-N``: creating a link never overwrites."""
    for i in range(1, 10_000):
        target = path if i == 1 else path.with_name(f"{path.stem}-{i}{path.suffix}")
        try:
            os.link(tmp, target)
            return target
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for {path.name}")


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """``atomic_write_bytes`` of pretty JSON."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def sweep_stale_tmp(root: str | Path | None = None, older_than: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete hidden ``.*.tmp`` files left by killed saves under ``root`` (default: the home folder)."""
    root = Path(root) if root is not None else home_dir()
    removed = []
    now = time.time()
    for tmp in root.rglob(f".*{TMP_SUFFIX}"):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # another process removed or is using it
    return removed
