"""Train-and-save: the single entry point the CLI, the UI worker and scripts share."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from explorer.checkpoint import build_metadata, save_checkpoint
from explorer.data import DATASET_NAMES, Dataset, load_dataset
from explorer.data.paired import PAIRED_NAMES
from explorer.device import pick_device
from explorer.errors import ConfigError, TrainingDiverged
from explorer.models import BaseVAE, get_model_class
from explorer.training.train import Progress, TrainSettings, make_model, train

PAIR_DATASET = "mnist"  # what anchored_pair trains on
DEFAULT_ANCHOR_RATE = 3.0  # 5 epochs, z=2, donut/stick: cos(mean_1 - mean_0, (1,1)) 0.96-0.99 over seeds


def datasets_for(kind: str) -> tuple[str, ...]:
    """The built-in datasets a model kind trains on: paired ones for a two-modality model, else single."""
    return PAIRED_NAMES if get_model_class(kind).needs_dataset else DATASET_NAMES


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a training run."""

    model: str = "vae-mlp"
    dataset: str = "mnist"
    config: dict[str, Any] = field(default_factory=dict)  # model config fields (latent_dim, beta...)
    settings: TrainSettings = field(default_factory=TrainSettings)
    anchors: tuple[str, ...] = ()  # names of built-in anchors, e.g. ("donut", "stick")
    anchor_rate: float = 0.0

    def model_config(self, ds: Dataset) -> dict[str, Any]:
        """The model config: the user's fields plus what the dataset fixes."""
        cls = get_model_class(self.model)
        cfg = {**cls.dataset_config(ds), **self.config}
        if self.anchors:
            if not cls.stochastic:
                raise ConfigError(f"anchors act through the KL term, which {self.model} does not have; use a VAE")
            from explorer.analysis.anchors import anchor_specs

            specs = anchor_specs(self.anchors, ds, int(cfg.get("latent_dim", 2)))
            cfg["anchors"] = [{"name": a.name, "prototype": list(a.prototype), "target": list(a.target)} for a in specs]
            cfg["anchor_rate"] = self.anchor_rate if self.anchor_rate > 0 else DEFAULT_ANCHOR_RATE
        cls.config_cls.from_dict(cfg)  # validate early
        return cfg


def train_run(
    spec: RunSpec,
    out: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    data_dir: str | None = None,
    on_epoch: Callable[[BaseVAE, Dataset, Progress], None] | None = None,
    extra_meta: dict[str, Any] | None = None,
    exclusive: bool = False,
) -> Iterator[Progress]:
    """Load data, build the model, run the training loop, and save the checkpoint to ``out``.

    Yields the loop's events, then one ``saved`` event whose metrics are the test metrics.
    ``on_epoch(model, dataset, progress)`` is called after each epoch (snapshots for the UI).
    With ``exclusive``, an existing ``out`` is never replaced (the name gets a ``-N`` suffix).
    If the loss diverges, the last good epoch is saved (as a stop would) before
    TrainingDiverged is raised, and its message says where.
    """
    ds = load_dataset(spec.dataset, data_dir)
    cfg = spec.model_config(ds)
    model = make_model(spec.model, cfg, spec.settings.seed)
    model.attach(ds)
    last: Progress | None = None
    diverged: TrainingDiverged | None = None
    try:
        for p in train(model, ds.train, ds.test, spec.settings, should_stop, pick_device()):
            last = p
            if p.event == "epoch" and on_epoch is not None:
                on_epoch(model, ds, p)
            yield p
    except TrainingDiverged as exc:  # the model holds the last good epoch's weights
        if last is None or not last.history:
            raise TrainingDiverged(f"{exc} No epoch had finished, so nothing was saved.") from None
        diverged = exc
        last = replace(last, stopped=True)
    assert last is not None
    if not last.history:
        raise ConfigError("the run was stopped before its first epoch finished; nothing to save")
    final = last.history[-1]
    test_metrics = {k.removeprefix("test_"): v for k, v in final.items() if k.startswith("test_")}
    meta = build_metadata(
        model,
        dataset=spec.dataset,
        split=ds.split_desc,
        seed=spec.settings.seed,
        epochs=len(last.history),
        history=last.history,
        test_metrics=test_metrics,
        training=spec.settings.to_dict(),
        stopped_early=last.stopped,
        anchors=list(spec.anchors),
        **(extra_meta or {}),
    )
    saved = save_checkpoint(model, out, meta, exclusive=exclusive) if out is not None else None
    yield Progress(
        "saved",
        last.epoch,
        last.step,
        last.total_steps,
        last.elapsed,
        test_metrics,
        last.history,
        last.stopped,
        str(saved) if saved else None,
    )
    if diverged is not None:
        where = f"saved them as {saved.name}" if saved else "nothing was saved"
        raise TrainingDiverged(f"{diverged} The last good epoch ({len(last.history)}): {where}.")


def fmt_eta(p: Progress) -> str:
    """Seconds left, from the pace so far, as '1m05s'."""
    if p.step == 0:
        return "?"
    left = p.elapsed / p.step * (p.total_steps - p.step)
    return f"{int(left // 60)}m{int(left % 60):02d}s" if left >= 60 else f"{math.ceil(left)}s"


def beta_sweep(spec: RunSpec, betas: tuple[float, ...] = (0.5, 1.0, 4.0)) -> dict[str, RunSpec]:
    """The same run, without anchors, at several β (an autoencoder has no β, so it becomes vae-mlp)."""
    model = "vae-mlp" if spec.model == "ae-mlp" else spec.model
    return {
        f"β = {b:g}": replace(spec, model=model, config={**spec.config, "beta": b}, anchors=(), anchor_rate=0.0)
        for b in betas
    }


def ae_against_vae(spec: RunSpec) -> dict[str, RunSpec]:
    """ae-mlp and vae-mlp with a 2-D latent, same data and settings: the holes the KL term fills."""
    fields = {f.name for f in dataclasses.fields(get_model_class("vae-mlp").config_cls)}
    config = {**{k: v for k, v in spec.config.items() if k in fields}, "latent_dim": 2, "beta": 1.0}
    return {
        kind: replace(spec, model=kind, config=config, anchors=(), anchor_rate=0.0) for kind in ("ae-mlp", "vae-mlp")
    }


def anchored_pair(anchors: tuple[str, ...], rate: float, epochs: int, seed: int) -> dict[str, RunSpec]:
    """A 2-D MNIST vae-mlp with anchors and its plain twin: same data, settings and seed."""
    base = RunSpec("vae-mlp", PAIR_DATASET, {"latent_dim": 2}, TrainSettings(epochs=epochs, seed=seed))
    return {"anchored": replace(base, anchors=tuple(anchors), anchor_rate=rate), "plain": base}
