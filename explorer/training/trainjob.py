"""Training as a background job: the worker side of the live-training page.

Publishes, through the job's reporter (the app mirrors them into the job folder):
``curves.json`` (per-step terms, throttled), ``history.json`` and ``epoch_NNN.npz`` (a latent map
of a fixed test subset and 8 reconstructions). When the run ends, or is stopped after an epoch,
it returns the checkpoint's bytes for the app to write into ``runs/``; the worker keeps nothing.
"""

from __future__ import annotations

import io
import tempfile
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
from explorer.storage import home_dir
from explorer.training.pipeline import RunSpec, train_run
from explorer.training.train import Progress, TrainSettings

MAP_POINTS = 2000
N_RECON = 8


def spec_from_dict(d: dict[str, Any]) -> RunSpec:
    """A RunSpec from its JSON form."""
    return RunSpec(
        model=d["model"],
        dataset=d["dataset"],
        config=dict(d.get("config", {})),
        settings=TrainSettings(**d.get("settings", {})),
        anchors=tuple(d.get("anchors", ())),
        anchor_rate=float(d.get("anchor_rate", 0.0)),
    )


def spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    return {
        "model": spec.model,
        "dataset": spec.dataset,
        "config": spec.config,
        "settings": spec.settings.to_dict(),
        "anchors": list(spec.anchors),
        "anchor_rate": spec.anchor_rate,
    }


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


def train_job(params: dict[str, Any], blobs: dict[str, bytes], rep: Any) -> dict[str, bytes]:
    """Worker entry for the ``train`` job kind: {"runs/NAME.safetensors": checkpoint bytes}."""
    spec = spec_from_dict(params["spec"])
    rel = f"{runs_dir().relative_to(home_dir())}/{params['name']}.safetensors"
    curves: dict[str, list[float]] = {"step": []}
    last_write = 0.0

    def on_epoch(model: BaseVAE, ds: Dataset, p: Progress) -> None:
        buf = io.BytesIO()
        np.savez(buf, **epoch_snapshot(model, ds))
        rep.put(f"epoch_{p.epoch:03d}.npz", buf.getvalue(), once=True)
        rep.put_json("history.json", p.history)

    with tempfile.TemporaryDirectory(prefix="explorer-train-") as tmp:
        out = Path(tmp) / "run.safetensors"
        for p in train_run(
            spec,
            out,
            should_stop=rep.should_stop,
            on_epoch=on_epoch,
            extra_meta={"name": params["name"], "trained_in": "app"},
        ):
            if p.event == "step":
                curves["step"].append(p.step)
                for k, v in p.metrics.items():
                    curves.setdefault(k, []).append(round(v, 3))
                if time.time() - last_write > 1.0:
                    rep.put_json("curves.json", curves)
                    last_write = time.time()
                rep.progress(p.fraction, f"epoch {p.epoch + 1}/{spec.settings.epochs} · loss {p.metrics['total']:.1f}")
            elif p.event == "epoch":
                rep.progress(
                    p.fraction,
                    f"epoch {p.epoch}/{spec.settings.epochs} done · test −ELBO {p.metrics['test_elbo']:.1f}",
                    force=True,
                    epochs_done=p.epoch,
                )
            elif p.event == "saved":
                rep.put_json("curves.json", curves)
                rep.progress(1.0, f"saved {Path(rel).name}", force=True, stopped_early=p.stopped)
        return {rel: out.read_bytes()}
