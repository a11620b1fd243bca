"""The CLI's commands for models from outside (issue #19): ``import-onnx``, and ``--model pkg.module:factory``
on serve, evaluate, encode and embed. ``explorer.cli`` adds them to its parser."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from explorer.errors import ExplorerError


def cmd_import_onnx(args: argparse.Namespace) -> int:
    """Validate an ONNX encoder/decoder pair, store it in EXPLORER_HOME and register it in the catalog."""
    import re

    from explorer.catalog import list_checkpoints
    from explorer.foreign.store import import_onnx, read_foreign_metadata

    try:
        shape = tuple(int(v) for v in args.image_shape.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise ExplorerError(f"--image-shape wants C,H,W (e.g. 1,28,28), got {args.image_shape!r}")
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(args.encoder).stem).strip("-.")[:64] or "imported"
    path = import_onnx(
        args.encoder,
        args.decoder,
        latent_dim=args.latent_dim,
        image_shape=shape,
        dataset=args.dataset,
        name=name,
        encoder_outputs=args.encoder_outputs,
        decoder_output=args.decoder_output,
        taken={e.name for e in list_checkpoints()},
    )
    meta = read_foreign_metadata(path)
    print(json.dumps({"name": name, "path": str(path), "stochastic": meta["stochastic"], **meta["test_metrics"]}))
    return 0


def _with_trusted_model(func):
    """Wrap a command so that ``--model pkg.module:factory`` stands in for the checkpoint argument."""

    def run(args: argparse.Namespace) -> int:
        from explorer.foreign.adapter import TRUSTED_ENV

        if getattr(args, "model", None):
            from explorer.foreign.store import register_adapter

            if getattr(args, "checkpoint", None):
                raise ExplorerError("give a checkpoint or --model, not both")
            args.checkpoint = str(register_adapter(args.model, getattr(args, "dataset", None)))
        else:
            os.environ.pop(TRUSTED_ENV, None)  # only --model on this command line names trusted code
            if hasattr(args, "checkpoint") and not args.checkpoint:
                raise ExplorerError("give a checkpoint (a file or a known name) or --model pkg.module:factory")
        return func(args)

    return run


def add_foreign_commands(sub: argparse._SubParsersAction) -> None:
    """``import-onnx``, and ``--model pkg.module:factory`` on serve, evaluate, encode and embed (issue #19)."""
    o = sub.add_parser("import-onnx", help="import a VAE exported to ONNX (an encoder and a decoder file)")
    o.add_argument("--encoder", required=True, type=Path, help="ONNX file: images -> mu, logvar (or mu)")
    o.add_argument("--decoder", required=True, type=Path, help="ONNX file: z -> images")
    o.add_argument("--latent-dim", required=True, type=int)
    o.add_argument("--image-shape", required=True, help="C,H,W, e.g. 1,28,28")
    o.add_argument(
        "--dataset", required=True, help="the dataset it was trained on: mnist, fashion-mnist, digits or a .npz"
    )
    o.add_argument("--name", help="catalog name (default: the encoder file's name)")
    o.add_argument("--decoder-output", choices=["probabilities", "logits"], default="probabilities")
    o.add_argument(
        "--encoder-outputs",
        choices=["mu,logvar", "mu"],
        default="mu,logvar",
        help="mu,logvar: two outputs, or one of width 2z; mu: a deterministic encoder (no KL)",
    )
    o.set_defaults(func=cmd_import_onnx)
    for name in ("serve", "evaluate", "encode", "embed"):
        sp = sub.choices[name]
        sp.add_argument(
            "--model",
            metavar="PKG.MODULE:FACTORY",
            help="trusted: import your own torch model (see explorer.foreign.protocol) instead of a checkpoint",
        )
        for action in sp._actions:
            if action.dest == "checkpoint":  # optional when --model names the model
                action.nargs, action.default = "?", None
        sp.set_defaults(func=_with_trusted_model(sp.get_default("func")))
    sub.choices["serve"].add_argument("--dataset", help="with --model: the dataset to show (default: by image shape)")
