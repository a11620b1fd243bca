"""The one training loop. A generator of ``Progress`` events that the CLI, UI and tests consume."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch

from explorer.analysis.evaluate import evaluate_split
from explorer.data import Split
from explorer.device import pick_device
from explorer.errors import ConfigError, TrainingDiverged
from explorer.models import BaseVAE, build_model


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser settings (Adam)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= 1000:
            raise ConfigError(f"epochs must be 1-1000, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 65536:
            raise ConfigError(f"batch size must be 1-65536, got {self.batch_size!r}")
        if not isinstance(self.lr, (int, float)) or not (0 < self.lr <= 1) or not math.isfinite(self.lr):
            raise ConfigError(f"learning rate must be in (0, 1], got {self.lr!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise ConfigError(f"seed must be an int from 0 to 2^31-1, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Progress:
    """One event of a run. ``metrics`` holds batch terms on ``step`` and train_/test_ terms on ``epoch``."""

    event: str  # start, step, epoch, end (train_run adds saved)
    epoch: int  # epochs completed
    step: int  # optimiser steps taken
    total_steps: int
    elapsed: float
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # one row per completed epoch
    stopped: bool = False
    checkpoint: str | None = None  # on "saved": the file written (its name may carry a -N suffix)

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total_steps)


def make_model(kind: str, config: dict, seed: int) -> BaseVAE:
    """Build a model with seeded initial weights."""
    torch.manual_seed(seed)
    return build_model(kind, config)


def train(
    model: BaseVAE,
    train_split: Split,
    test_split: Split,
    settings: TrainSettings,
    should_stop: Callable[[], bool] | None = None,
    device: torch.device | None = None,
) -> Iterator[Progress]:
    """Train ``model`` in place with Adam, yielding start, step, epoch and end events.

    A stop request ends the run at once and keeps the last completed epoch's weights.
    A NaN or infinite loss raises TrainingDiverged after restoring the last good weights.
    """
    device = device or pick_device()
    model.to(device)
    x_all = train_split.images.to(device)  # (N, C, H, W)
    y_all = train_split.labels.to(device)  # (N,)
    n = len(train_split)
    steps_per_epoch = math.ceil(n / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    perm_gen = torch.Generator().manual_seed(settings.seed)
    noise_gen = torch.Generator(device=device).manual_seed(settings.seed + 1)
    good_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, float]] = []
    step, t0 = 0, time.perf_counter()
    yield Progress("start", 0, 0, total, 0.0)
    for epoch in range(settings.epochs):
        model.train()
        sums: dict[str, float] = {}
        perm = torch.randperm(n, generator=perm_gen).to(device)
        for i in range(steps_per_epoch):
            if should_stop is not None and should_stop():
                model.load_state_dict(good_state)
                yield Progress("end", epoch, step, total, time.perf_counter() - t0, history=history, stopped=True)
                return
            idx = perm[i * settings.batch_size : (i + 1) * settings.batch_size]
            terms = model.loss(x_all[idx], y_all[idx], generator=noise_gen)
            if not torch.isfinite(terms["total"]):
                model.load_state_dict(good_state)
                raise TrainingDiverged(
                    f"loss became {float(terms['total'].detach())} at epoch {epoch + 1}, step {step + 1}; "
                    f"kept the weights from epoch {epoch}. Try a lower learning rate."
                )
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            step += 1
            batch = {k: float(v.detach()) for k, v in terms.items()}
            for k, v in batch.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            yield Progress("step", epoch, step, total, time.perf_counter() - t0, batch, history)
        row = {"epoch": epoch + 1, **{f"train_{k}": v / n for k, v in sums.items()}}
        row.update({f"test_{k}": v for k, v in evaluate_split(model, test_split, seed=settings.seed).items()})
        if not all(math.isfinite(v) for v in row.values()):
            model.load_state_dict(good_state)
            raise TrainingDiverged(f"test loss became non-finite after epoch {epoch + 1}; kept epoch {epoch}")
        history.append(row)
        good_state = copy.deepcopy(model.state_dict())
        yield Progress("epoch", epoch + 1, step, total, time.perf_counter() - t0, row, history)
    yield Progress("end", settings.epochs, step, total, time.perf_counter() - t0, history[-1], history)
