"""The CLI as a user runs it: JSON on stdout, one clear line on stderr for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from explorer.checkpoint_header import REQUIRED_META
from tests.bad_files import MARKER, bad_checkpoints


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def bad_ckpts(tmp_path_factory):
    return bad_checkpoints(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits.safetensors"
    proc = run("train", "--dataset", "digits", "--latent-dim", "3", "--epochs", "2", "--out", str(out))
    return out, proc


def test_train_prints_final_metrics(trained):
    out, proc = trained
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"elbo", "recon", "kl"} <= set(line) and out.is_file()
    assert "epoch 2" in proc.stderr  # the progress bar


def test_info(trained):
    meta = json.loads(run("info", "--json", str(trained[0])).stdout)
    assert set(REQUIRED_META) <= set(meta)
    assert meta["dataset"] == "digits" and meta["epochs"] == 2 and len(meta["history"]) == 2


def test_evaluate(trained):
    report = json.loads(run("evaluate", str(trained[0])).stdout)
    assert {"elbo", "recon", "kl", "active_dims", "knn_accuracy"} <= set(report)
    assert abs(report["elbo"] - (report["recon"] + report["kl"])) < 1e-3
    assert 0 < report["knn_accuracy"] <= 1


def test_encode(trained, tmp_path):
    run("encode", str(trained[0]), "--split", "all", "--out", str(tmp_path / "z.npz"))
    z = np.load(tmp_path / "z.npz")
    assert z["mu"].shape == (1797, 3) and z["logvar"].shape == (1797, 3) and z["labels"].shape == (1797,)


@pytest.mark.parametrize("command", ["info", "evaluate"])
def test_pickles_refused_without_running(command, tmp_path):
    files = bad_checkpoints(tmp_path)
    for ext in ("pt", "pth", "ckpt", "safetensors"):
        proc = run(command, str(files[f"pickle-code.{ext}"]), check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode != 0 and len(lines) == 1 and "pickle" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--latent-dim", "0", "--out", "x.safetensors"],
        ["train", "--dataset", "nope", "--out", "x.safetensors"],
        ["info", "/no/such/file"],
        ["evaluate", "missing-model"],
    ],
)
def test_bad_arguments_one_line(args):
    proc = run(*args, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr


def test_joint_vae_train_and_encode_each_modality(tmp_path):
    ck = tmp_path / "joint.safetensors"
    line = json.loads(
        run(
            "train",
            "--dataset",
            "mnist+label",
            "--model",
            "joint-vae",
            "--latent-dim",
            "4",
            "--epochs",
            "1",
            "--fusion",
            "poe",
            "--cca-weight",
            "1",
            "--adv-weight",
            "0.5",
            "--out",
            str(ck),
        ).stdout.splitlines()[-1]
    )
    assert {"unimodal", "cca", "adv"} <= set(line)
    meta = json.loads(run("info", "--json", str(ck)).stdout)
    assert meta["config"]["modalities"] == ["mnist", "label"] and meta["config"]["second"] == "label"
    for modality, n in (("mnist", 1000), ("label", 1000)):
        run("encode", str(ck), "--modality", modality, "--out", str(tmp_path / f"{modality}.npz"))
        z = np.load(tmp_path / f"{modality}.npz")
        assert z["mu"].shape == (n, 4) and z["labels"].shape == (n,)
    bad = run("encode", str(ck), "--modality", "audio", "--out", str(tmp_path / "x.npz"), check=False)
    assert bad.returncode == 2 and "modality must be one of" in bad.stderr


def test_joint_options_refused_by_other_models():
    proc = run("train", "--model", "vae-mlp", "--fusion", "mean", "--out", "x.safetensors", check=False)
    assert proc.returncode == 2 and "unknown config keys" in proc.stderr


def run_inline(*args: str) -> subprocess.CompletedProcess:
    """The CLI's main() in this process (no torch import per call), as a CompletedProcess."""
    import contextlib
    import io

    from explorer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr
    return lines[0]


def test_info_summary_is_readable(trained):
    out = run("info", str(trained[0])).stdout
    lines = out.strip().splitlines()
    assert 4 <= len(lines) <= 12 and all(len(line) < 200 for line in lines)
    assert "vae-mlp" in lines[0] and "digits" in out and "2 epochs" in out


def test_known_name_with_suffix_resolves():
    meta = json.loads(run("info", "--json", "mnist-vae-mlp-z2.safetensors").stdout)
    assert meta["model"] == "vae-mlp" and meta["latent_dim"] == 2


@pytest.mark.parametrize(
    "name",
    [
        "missing-tensor",
        "extra-tensor",
        "wrong-shape",
        "nan-weights",
        "unknown-kind",
        "nonsense-config",
        "latent-dim-mismatch",
    ],
)
def test_info_exits_2_when_the_file_would_not_load(name, bad_ckpts):
    files = bad_ckpts
    _one_error_line(run_inline("info", str(files[f"{name}.safetensors"])))


def test_info_negative_latent_dim_exits_2(tmp_path):
    from explorer.checkpoint import checkpoint_bytes
    from tests.bad_files import _good, _swap_meta

    model, meta = _good()
    path = tmp_path / "neg.safetensors"
    path.write_bytes(_swap_meta(checkpoint_bytes(model, meta), latent_dim=-2))
    assert "latent_dim" in _one_error_line(run_inline("info", str(path)))


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "--anchor-rate", "nan", "--out", "x.safetensors"], "finite"),
        (["train", "--hidden", "abc", "--out", "x.safetensors"], "whole numbers"),
        (["train", "--lr", "abc", "--out", "x.safetensors"], "not a number"),
        (["train", "--epochs", "x", "--out", "x.safetensors"], "invalid int"),
        (["train"], "required"),
        (["no-such-command"], "invalid choice"),
        (["evaluate", "mnist-vae-mlp-z2", "--device", "tpu"], "this machine has: cpu"),
    ],
)
def test_bad_arguments_are_one_line_without_usage(args, words):
    assert words in _one_error_line(run_inline(*args))


def test_bad_device_in_the_environment_exits_2_and_lists_devices():
    import os

    env = {**os.environ, "EXPLORER_DEVICE": "cuda:7"}
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "evaluate", "mnist-vae-mlp-z2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    line = _one_error_line(proc)
    assert "cuda:7" in line and "cpu" in line


def test_odd_files_are_refused(tmp_path):
    import os

    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    for target in ("/dev/zero", str(fifo)):
        assert "not a regular file" in _one_error_line(run_inline("info", target))


def test_array_file_is_called_an_array_file(tmp_path):
    run("encode", "mnist-vae-mlp-z2", "--out", str(tmp_path / "codes.npz"))
    assert "array file" in _one_error_line(run("evaluate", str(tmp_path / "codes.npz"), check=False))


def test_unwritable_out_is_one_line(tmp_path):
    line = _one_error_line(run_inline("encode", "mnist-vae-mlp-z2", "--out", "/proc/codes.npz"))
    assert "cannot write" in line
    assert not list(tmp_path.iterdir())


def test_printed_metrics_are_rounded():
    report = json.loads(run("evaluate", "mnist-vae-mlp-z2").stdout)
    for v in (report["knn_accuracy"], report["elbo"], *report["kl_per_dim"]):
        assert v == round(v, 4)
