"""``python -m explorer`` / ``latent-explorer``: info, evaluate, encode, serve; train and embed live in cli_jobs.py."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from pathlib import Path

from explorer.cli_jobs import _parse_sets  # noqa: F401 - where tests/test_train.py imports it from
from explorer.errors import ExplorerError

log = logging.getLogger("explorer.cli")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage block), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {self.prog.removeprefix('latent-explorer ')}: {message}\n")
        raise SystemExit(2)


def _replica_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 64")
    return int(text)


def _load(args: argparse.Namespace):
    from explorer.catalog import resolve
    from explorer.checkpoint import load_for_use
    from explorer.device import pick_device

    return load_for_use(resolve(args.checkpoint), pick_device())


def _dataset_for(args: argparse.Namespace, model, meta):
    from explorer.data import load_dataset

    ds = load_dataset(args.dataset or meta["dataset"], args.data_dir)
    if ds.in_shape != model.config.in_shape:
        raise ExplorerError(f"{ds.name} has images {ds.in_shape}; this model takes {model.config.in_shape}")
    if getattr(ds, "partner", None) is not None:
        model.attach(ds)
    return ds


def cmd_info(args: argparse.Namespace) -> int:
    """Check the whole checkpoint (exit 2 if it would not load), then print a summary or --json."""
    from explorer.catalog import resolve
    from explorer.checkpoint import load_checkpoint

    path = resolve(args.checkpoint)
    model, meta = load_checkpoint(path)
    if args.json:
        print(json.dumps(meta))
    else:
        print(_summary(path, model, meta))
    return 0


def _summary(path: Path, model, meta: dict) -> str:
    """A few readable lines about a checkpoint."""
    cfg = {k: v for k, v in meta["config"].items() if k not in ("anchors", "in_shape", "latent_dim")}
    train = meta.get("training") or {}
    metrics = "  ".join(f"{k} {v:.2f}" for k, v in meta["test_metrics"].items())
    anchors = ", ".join(meta.get("anchors") or []) or "none"
    lines = [
        f"{path.name}: {meta['model']}, z={meta['latent_dim']}, images {tuple(meta['config'].get('in_shape', ()))}, "
        + (
            "imported: its files checked by their hashes and a probe batch"
            if "foreign" in meta
            else f"{sum(p.numel() for p in model.parameters()):,} parameters (all tensors checked)"
        ),
        f"  dataset   {meta['dataset']} ({meta['split']})",
        "  config    " + " ".join(f"{k}={v}" for k, v in cfg.items()),
        f"  anchors   {anchors}",
        f"  training  {meta['epochs']} epochs"
        + (f", batch {train['batch_size']}, lr {train['lr']:g}" if {"batch_size", "lr"} <= set(train) else "")
        + f", seed {meta['seed']}"
        + (", stopped early" if meta.get("stopped_early") else ""),
        f"  test      {metrics or 'no metrics'}",
        f"  created   {meta['created']} ({', '.join(f'{k} {v}' for k, v in meta['versions'].items())})",
    ]
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from explorer.analysis.evaluate import evaluate

    model, meta = _load(args)
    ds = _dataset_for(args, model, meta)
    print(json.dumps({"dataset": ds.name, "split": "test", **_rounded(evaluate(model, ds.test, seed=args.seed))}))
    return 0


def _rounded(value, digits: int = 4):
    """Floats rounded for printing, inside dicts and lists too."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, digits) for v in value]
    return value


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from explorer.analysis.evaluate import encode_split
    from explorer.storage import atomic_write_bytes

    model, meta = _load(args)
    ds = _dataset_for(args, model, meta)
    if args.modality:
        from explorer.analysis.multimodal import encode_modality

        mu, logvar, labels = encode_modality(model, ds, args.modality, args.split)
    else:
        split = ds.split(args.split)
        mu, logvar = encode_split(model, split)
        labels = split.labels.numpy()
    buf = io.BytesIO()
    np.savez(buf, mu=mu, logvar=logvar, labels=labels)
    atomic_write_bytes(args.out, buf.getvalue())
    print(json.dumps({"out": str(args.out), "n": len(mu), "latent_dim": int(mu.shape[1])}))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    app = Path(__file__).resolve().parents[1] / "app.py"
    if args.replicas > 1:
        from explorer import replicas

        return replicas.serve(app, args.replicas, args.port, args.address)
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        "--browser.gatherUsageStats",
        "false",
    ]
    if args.headless:
        argv += ["--server.headless", "true"]
    os.execv(sys.executable, argv)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:

    from explorer.cli_jobs import add_embed_command, add_train_command

    p = _Parser(prog="latent-explorer", description="Look inside variational autoencoders.")
    sub = p.add_subparsers(dest="command", required=True)

    add_train_command(sub)

    i = sub.add_parser("info", help="check a checkpoint fully and summarise it")
    i.add_argument("checkpoint")
    i.add_argument("--json", action="store_true", help="print the metadata as one JSON object")
    i.set_defaults(func=cmd_info)

    for name, func, helptext in (
        ("evaluate", cmd_evaluate, "test-split metrics as JSON"),
        ("encode", cmd_encode, "write latent means to .npz"),
    ):
        e = sub.add_parser(name, help=helptext)
        e.add_argument("checkpoint")
        e.add_argument("--dataset", help="defaults to the checkpoint's dataset")
        e.add_argument("--seed", type=int, default=0)
        e.set_defaults(func=func)
        if name == "encode":
            e.add_argument("--split", choices=["train", "test", "all"], default="test")
            e.add_argument("--modality", help="joint-vae: encode one modality alone (e.g. mnist, fashion-mnist, label)")
            e.add_argument("--out", required=True, type=Path)

    add_embed_command(sub)

    s = sub.add_parser("serve", help="start the Streamlit app")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--address", default="127.0.0.1")
    s.add_argument("--headless", action="store_true")
    s.add_argument(
        "--replicas",
        type=_replica_count,
        default=1,
        help="app servers behind one sticky proxy on --port, sharing one Dask cluster (default 1: no proxy)",
    )
    s.set_defaults(func=cmd_serve)

    for sp in (sub.choices[n] for n in ("train", "evaluate", "encode")):
        sp.add_argument("--data-dir", help="folder with the dataset's IDX files (full MNIST, Fashion-MNIST)")
    for sp in (sub.choices[n] for n in ("train", "evaluate", "encode", "embed")):
        sp.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: $EXPLORER_DEVICE, else the best one here)")
    from explorer.foreign.cli import add_foreign_commands

    add_foreign_commands(sub)
    return p


def _check_device(args: argparse.Namespace) -> None:
    """Validate --device or $EXPLORER_DEVICE up front; workers and loaders then read the env var."""
    from explorer.device import check_device

    name = getattr(args, "device", None) or os.environ.get("EXPLORER_DEVICE")
    if name:
        os.environ["EXPLORER_DEVICE"] = str(check_device(name))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        _check_device(args)
        return args.func(args)
    except ExplorerError as exc:
        sys.stderr.write(f"\nerror: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except MemoryError:
        sys.stderr.write("\nerror: out of memory\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - one line for the user; EXPLORER_DEBUG=1 shows the traceback
        if os.environ.get("EXPLORER_DEBUG"):
            raise
        sys.stderr.write(f"\nerror: unexpected {type(exc).__name__}: {str(exc)[:200]} (EXPLORER_DEBUG=1 shows where)\n")
        return 1
