"""Seconds per epoch: explorer's training loop against the classic PyTorch MNIST VAE loop.

Both train the same vae-mlp (784-400-100-16) on the same 9,000 bundled MNIST images with
Adam, batch 128. The reference is the plain loop of the PyTorch examples' VAE (a DataLoader
over the data, forward, loss, backward, step), written here for the benchmark.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import print_table

from explorer.data import load_dataset
from explorer.device import pick_device
from explorer.training.train import TrainSettings, make_model, train


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def classic_epoch(
    model, images: torch.Tensor, labels: torch.Tensor, device: torch.device, batch_size: int = 128
) -> float:
    """One epoch of the classic example's loop (batches moved to the device as they come); returns seconds."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, labels), batch_size=batch_size, shuffle=True
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.to(device).train()
    _sync(device)
    t0 = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = model.loss(x, y)["total"]
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def run(epochs: int = 3, device: str | None = None) -> list[tuple[str, str, str, str]]:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    dev = pick_device(device)
    ds = load_dataset("mnist")
    ref_model = make_model("vae-mlp", {"latent_dim": 16}, 0)
    ref = min(classic_epoch(ref_model, ds.train.images, ds.train.labels, dev) for _ in range(epochs))
    model = make_model("vae-mlp", {"latent_dim": 16}, 0)
    times, last = [], 0.0
    for p in train(model, ds.train, ds.test.subset(1, 0), TrainSettings(epochs=epochs), device=dev):
        if p.event == "epoch":
            times.append(p.elapsed - last)
            last = p.elapsed
    ours = min(times)
    return [
        (
            f"training s/epoch (9k MNIST, vae-mlp z=16, {dev.type})",
            f"{ours:.2f} s",
            f"{ref:.2f} s (classic PyTorch loop)",
            f"{ours / ref:.2f}x",
        )
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    a = ap.parse_args()
    print_table(run(a.epochs, a.device))
