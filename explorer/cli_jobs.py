"""The CLI's commands that run as jobs (``train``, ``embed``): locally, or on a Dask scheduler with
``--scheduler`` / $EXPLORER_SCHEDULER. ``explorer.cli`` adds them to its parser."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from pathlib import Path

from explorer.errors import ExplorerError


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _progress_bar(p, width: int = 30) -> str:
    from explorer.training.pipeline import fmt_eta

    filled = int(width * p.fraction)
    loss = f" loss {p.metrics.get('total', float('nan')):8.2f}" if p.event == "step" else ""
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * p.fraction:5.1f}% epoch {p.epoch + (p.event == 'step')}{loss} ETA {fmt_eta(p)} "


def cmd_train(args: argparse.Namespace) -> int:
    from explorer.models import model_options
    from explorer.training.pipeline import RunSpec, train_run
    from explorer.training.train import TrainSettings

    config = {name: getattr(args, name) for name in model_options() if getattr(args, name) is not None}
    config.update(_parse_sets(args.set or []))
    anchors = tuple(a for a in (args.anchor or "").split(",") if a)
    spec = RunSpec(
        args.model,
        args.dataset,
        config,
        TrainSettings(args.epochs, args.batch_size, args.lr, args.seed),
        anchors,
        args.anchor_rate,
    )
    if _scheduler(args):
        return _train_on_cluster(args, spec)
    tty = sys.stderr.isatty()
    for p in train_run(spec, args.out, data_dir=args.data_dir):
        if p.event == "step" and (tty or p.step % 50 == 0):
            sys.stderr.write(_progress_bar(p) if tty else _progress_bar(p).strip("\r") + "\n")
        elif p.event == "epoch":
            sys.stderr.write(_progress_bar(p) + f"test elbo {p.metrics['test_elbo']:.2f}\n")
        elif p.event == "saved":
            print(json.dumps({"checkpoint": str(args.out), **p.metrics}))
    return 0


def _scheduler(args: argparse.Namespace) -> str:
    from explorer.cluster import scheduler_address

    return scheduler_address(getattr(args, "scheduler", None))


def _run_on_cluster(args: argparse.Namespace, kind: str, params: dict):
    """Submit one job to the Dask scheduler, show its progress on stderr, and return its final status."""
    from explorer.jobs import JobRunner

    runner = JobRunner(address=_scheduler(args))
    job = runner.submit(kind, params)
    try:
        while (st := runner.wait(job, timeout=1.0)).active:
            sys.stderr.write(f"\r[{st.state}] {100 * st.progress:5.1f}% {st.message[:60]:60s}")
    except KeyboardInterrupt:
        runner.stop(job)
        st = runner.wait(job, timeout=60)
    sys.stderr.write("\n")
    if st.state == "failed":
        raise ExplorerError(f"the {kind} job failed on the cluster: {st.error}")
    return st


def _train_on_cluster(args: argparse.Namespace, spec) -> int:
    import shutil
    import uuid

    from explorer.training.trainjob import spec_to_dict

    if args.data_dir:
        raise ExplorerError("--data-dir names a folder on this machine; cluster workers load their own datasets")
    name = f"cli-{uuid.uuid4().hex[:8]}"
    st = _run_on_cluster(args, "train", {"spec": spec_to_dict(spec), "name": name})
    ckpt = (st.extra or {}).get("checkpoint")
    if not ckpt:
        raise ExplorerError("the training job ended without a checkpoint")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(ckpt, args.out)
    from explorer.checkpoint_header import read_metadata

    print(json.dumps({"checkpoint": str(args.out), **read_metadata(args.out)["test_metrics"]}))
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from explorer.analysis.projection import ProjectionParams, get_or_compute
    from explorer.catalog import resolve
    from explorer.checkpoint_header import read_metadata
    from explorer.storage import atomic_write_bytes

    path = resolve(args.checkpoint)
    dataset = args.dataset or read_metadata(path)["dataset"]
    p = ProjectionParams(method=args.method, dims=args.dims, split=args.split, limit=args.limit, seed=args.seed)
    t0 = time.perf_counter()
    if _scheduler(args):  # on the cluster: the job returns the map, written to this machine's cache
        from explorer.analysis.projection import cache_key, load_cached
        from explorer.checkpoint import blobs_hash, model_blobs

        key = cache_key(blobs_hash(model_blobs(path)), dataset, p)
        proj, cached = load_cached(key), True
        if proj is None:
            _run_on_cluster(
                args, "projection", {"checkpoint": str(path), "dataset": dataset, "projection": p.to_dict()}
            )
            proj, cached = load_cached(key), False
    else:
        proj, cached = get_or_compute(path, dataset, p, n_jobs=os.cpu_count() or 1)
    seconds = time.perf_counter() - t0
    buf = io.BytesIO()
    np.savez(buf, embedding=proj.embedding, labels=proj.labels, index=proj.index)
    atomic_write_bytes(args.out, buf.getvalue())
    print(
        json.dumps(
            {
                "out": str(args.out),
                "seconds": round(seconds, 3),
                "cached": cached,
                "n": len(proj.labels),
                **{k: round(v, 4) for k, v in proj.meta["quality"].items()},
            }
        )
    )
    return 0


def _parse_sets(pairs: list[str]) -> dict:
    """``key=value`` pairs for any model config field; values are JSON (``[400,100]``, ``true``) or text."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ExplorerError(f"--set needs key=value, got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            out[key.strip().replace("-", "_")] = value
    return out


def _flag_type(opt):
    """``opt.parse`` for argparse: a bad value's message names what the field takes."""

    def parse(text: str):
        try:
            return opt.parse(text)
        except ValueError as exc:
            wanted = {int: "a whole number", float: "a finite number"}.get(type(opt.default))
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}" if wanted else str(exc)) from None

    return parse


def _add_config_flags(t: argparse.ArgumentParser) -> None:
    """One flag per user-set model config field (``option()`` in the configs), unset unless given."""
    from explorer.models import model_names, model_options

    def shown(v: object) -> str:
        return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)

    for name, by_kind in model_options().items():
        opt = next(iter(by_kind.values()))
        only = "" if len(by_kind) == len(model_names()) else f"{', '.join(by_kind)}: "
        groups: dict[str, list[str]] = {}
        for kind, o in by_kind.items():
            groups.setdefault(shown(o.default), []).append(kind)
        default = (
            next(iter(groups)) if len(groups) == 1 else "; ".join(f"{v} for {', '.join(k)}" for v, k in groups.items())
        )
        kw = (
            {"action": argparse.BooleanOptionalAction}
            if isinstance(opt.default, bool)
            else {"type": _flag_type(opt), "choices": opt.choices or None}
        )
        t.add_argument("--" + name.replace("_", "-"), default=None, help=f"{only}{opt.help} (default {default})", **kw)
    t.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="any other model config field, e.g. anchor_score=cosine"
    )


def _add_scheduler_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", help="run on this Dask scheduler (tcp://host:port; default $EXPLORER_SCHEDULER)")


def add_train_command(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand: its flags, one per model config field, and ``--scheduler``."""
    from explorer.data import DATASET_NAMES
    from explorer.data.paired import PAIRED_NAMES
    from explorer.models import model_names
    from explorer.training.pipeline import DEFAULT_ANCHOR_RATE

    t = sub.add_parser("train", help="train a model and save a checkpoint")
    t.add_argument(
        "--dataset",
        default="mnist",
        help=f"{', '.join(DATASET_NAMES)}, a .npz path, or for joint-vae {' or '.join(PAIRED_NAMES)}",
    )
    t.add_argument("--model", default="vae-mlp", choices=model_names())
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=_positive_float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--anchor", help="comma-separated anchors: donut, stick, class:K, image:I; NAME@x:y sets a target")
    t.add_argument(
        "--anchor-rate",
        type=_positive_float,
        default=DEFAULT_ANCHOR_RATE,
        help=f"strength of the anchor pull (default {DEFAULT_ANCHOR_RATE:g})",
    )
    _add_config_flags(t)
    t.add_argument("--out", required=True, type=Path)
    t.set_defaults(func=cmd_train)
    _add_scheduler_flag(t)


def add_embed_command(sub: argparse._SubParsersAction) -> None:
    """The ``embed`` subcommand (a 2-D/3-D map, cached), with ``--scheduler``."""
    m = sub.add_parser("embed", help="a 2-D/3-D map of the latent codes (cached)")
    m.add_argument("checkpoint")
    m.add_argument("--method", choices=["pca", "tsne", "umap", "raw"], default="pca")
    m.add_argument("--dataset", help="defaults to the checkpoint's dataset")
    m.add_argument("--split", choices=["train", "test", "all"], default="test")
    m.add_argument("--limit", type=int, help="a seeded random subset of this many points")
    m.add_argument("--dims", type=int, choices=[2, 3], default=2)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True, type=Path)
    m.set_defaults(func=cmd_embed)
    _add_scheduler_flag(m)
