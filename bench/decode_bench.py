"""Decode throughput of each shipped model on the chosen device, beside the same decode on the CPU.

Batch decode is what the server does for grids, manifolds and GIFs: codes (B, z) -> images (B, C, H, W).
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import ROOT, print_table

from explorer.checkpoint import load_for_use
from explorer.device import pick_device

MODELS = ("mnist-vae-mlp-z16", "fashion-mnist-vae-conv-z16")


def images_per_second(model, device: torch.device, batch: int, repeats: int = 20) -> float:
    """Best-of-repeats decode rate of ``batch`` random codes (images per second)."""
    z = torch.randn(batch, model.latent_dim, device=device)  # (B, z)
    best = float("inf")
    with torch.no_grad():
        model.decode(z)  # warm-up (kernels, allocator)
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.decode(z)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return batch / best


def run(device: str | None = None, batch: int = 1024) -> list[tuple[str, str, str, str]]:
    dev = pick_device(device)
    rows = []
    for name in MODELS:
        path = ROOT / "checkpoints" / f"{name}.safetensors"
        model, _ = load_for_use(path, "cpu")
        cpu = images_per_second(model, torch.device("cpu"), batch)
        ours = images_per_second(model.to(dev), dev, batch) if dev.type != "cpu" else cpu
        rows.append(
            (
                f"decode {batch} codes, {name} ({dev.type})",
                f"{ours:,.0f} img/s",
                f"{cpu:,.0f} img/s (CPU)",
                f"{ours / cpu:.1f}x",
            )
        )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default=None)
    ap.add_argument("--batch", type=int, default=1024)
    a = ap.parse_args()
    print_table(run(a.device, a.batch))
