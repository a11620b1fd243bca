"""Training as a background job: the worker side of the live-training page.

Writes into the job folder, atomically: ``curves.json`` (per-step terms, throttled),
``epoch_NNN.npz`` (a latent map of a fixed test subset and 8 reconstructions) and, when the
run ends or is stopped after an epoch, the checkpoint in ``runs/``.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.analysis.evaluate import encode_split
from explorer.analysis.projection import pca
from explorer.catalog import runs_dir
from explorer.data import Dataset
from explorer.models import BaseVAE
from explorer.storage import atomic_write_bytes, atomic_write_json
from explorer.training.pipeline import RunSpec, train_run
from explorer.training.train import Progress, TrainSettings

MAP_POINTS = 2000
N_RECON = 8


def spec_from_dict(d: dict[str, Any]) -> RunSpec:
    """A RunSpec from its JSON form."""
    return RunSpec(model=d["model"], dataset=d["dataset"], config=dict(d.get("config", {})),
                   settings=TrainSettings(**d.get("settings", {})), anchors=tuple(d.get("anchors", ())),
                   anchor_rate=float(d.get("anchor_rate", 0.0)))  # fmt: skip


def spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    return {"model": spec.model, "dataset": spec.dataset, "config": spec.config, "settings": spec.settings.to_dict(),
            "anchors": list(spec.anchors), "anchor_rate": spec.anchor_rate}  # fmt: skip


@torch.no_grad()
def epoch_snapshot(model: BaseVAE, ds: Dataset) -> dict[str, np.ndarray]:
    """The latent map of a fixed test subset (raw if z=2, else PCA fitted now) and 8 reconstructions."""
    sub = ds.test.subset(MAP_POINTS, seed=0)
    mu, _ = encode_split(model, sub)
    if mu.shape[1] == 2:
        emb = mu
    elif mu.shape[1] == 1:
        emb = np.concatenate([mu, np.zeros_like(mu)], 1)
    else:
        emb = pca(mu, 2)[0]
    x = ds.test.images[:N_RECON].to(model.device)
    y = ds.test.labels[:N_RECON].to(model.device)
    was = model.training
    model.eval()
    recon = model.reconstruct(x, y).cpu().numpy()
    model.train(was)
    return {
        "embedding": emb.astype(np.float32),
        "labels": sub.labels.numpy(),
        "originals": x.cpu().numpy(),
        "recons": recon,
    }


def train_job(params: dict[str, Any], rep: Any) -> None:
    """Worker entry for the ``train`` job kind."""
    spec = spec_from_dict(params["spec"])
    out = runs_dir() / f"{params['name']}.safetensors"
    curves: dict[str, list[float]] = {"step": []}
    last_write = 0.0

    def on_epoch(model: BaseVAE, ds: Dataset, p: Progress) -> None:
        buf = io.BytesIO()
        np.savez(buf, **epoch_snapshot(model, ds))
        atomic_write_bytes(rep.dir / f"epoch_{p.epoch:03d}.npz", buf.getvalue())
        atomic_write_json(rep.dir / "history.json", p.history)

    for p in train_run(spec, out, should_stop=rep.should_stop, on_epoch=on_epoch,
                       extra_meta={"name": params["name"], "trained_in": "app"}, exclusive=True):  # fmt: skip
        if p.event == "step":
            curves["step"].append(p.step)
            for k, v in p.metrics.items():
                curves.setdefault(k, []).append(round(v, 3))
            if time.time() - last_write > 1.0:
                atomic_write_json(rep.dir / "curves.json", curves)
                last_write = time.time()
            rep.progress(p.fraction, f"epoch {p.epoch + 1}/{spec.settings.epochs} · loss {p.metrics['total']:.1f}")
        elif p.event == "epoch":
            rep.progress(p.fraction, f"epoch {p.epoch}/{spec.settings.epochs} done · test −ELBO {p.metrics['test_elbo']:.1f}",
                         force=True, epochs_done=p.epoch)  # fmt: skip
        elif p.event == "saved":
            atomic_write_json(rep.dir / "curves.json", curves)
            saved = Path(p.checkpoint or out)  # two runs given one name get distinct files
            rep.progress(1.0, f"saved {saved.name}", force=True, checkpoint=str(saved), stopped_early=p.stopped)
