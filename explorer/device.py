"""Pick the torch device: $EXPLORER_DEVICE or --device if it exists here, else cuda, then mps, then cpu."""

from __future__ import annotations

import logging
import os

import torch

from explorer.errors import ConfigError

log = logging.getLogger(__name__)


class DeviceError(ConfigError):
    """The requested device is unknown or not present on this machine."""


def available_devices() -> list[str]:
    """The devices torch can use here, e.g. ['cpu', 'cuda:0']."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def best_device() -> torch.device:
    """cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(name: str) -> torch.device:
    """``name`` as a torch device if this machine has it; DeviceError naming the devices that exist."""
    have = available_devices()
    try:
        dev = torch.device(name.strip().lower())
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"unknown device {name!r}; this machine has: {', '.join(have)}") from None
    ok = (
        dev.type == "cpu"
        or (dev.type == "cuda" and torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count())
        or (dev.type == "mps" and "mps" in have)
    )
    if not ok:
        raise DeviceError(f"device {name!r} is not available here; this machine has: {', '.join(have)}")
    return dev


def device_problem() -> str | None:
    """Why $EXPLORER_DEVICE cannot be used (the app shows it and falls back), or None."""
    prefer = os.environ.get("EXPLORER_DEVICE")
    if not prefer:
        return None
    try:
        check_device(prefer)
    except DeviceError as exc:
        return f"EXPLORER_DEVICE: {exc}; using {best_device().type} instead"
    return None


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` (or $EXPLORER_DEVICE) if this machine has it, else the best available device.

    A bad explicit ``prefer`` raises DeviceError; a bad $EXPLORER_DEVICE is logged and falls back
    (the CLI checks it first and exits; the app shows ``device_problem()``).
    """
    if prefer:
        return check_device(prefer)
    env = os.environ.get("EXPLORER_DEVICE")
    if env:
        try:
            return check_device(env)
        except DeviceError as exc:
            log.warning("EXPLORER_DEVICE: %s; falling back", exc)
    return best_device()
