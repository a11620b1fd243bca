"""The CLI as a user runs it: JSON on stdout, one clear line on stderr for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.bad_files import MARKER, bad_checkpoints


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


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
    meta = json.loads(run("info", str(trained[0])).stdout)
    for key in ("model", "config", "latent_dim", "dataset", "split", "seed", "epochs", "history",
                "test_metrics", "versions", "created"):  # fmt: skip
        assert key in meta
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


@pytest.mark.parametrize("args", [["train", "--latent-dim", "0", "--out", "x.safetensors"],
                                  ["train", "--dataset", "nope", "--out", "x.safetensors"],
                                  ["info", "/no/such/file"], ["evaluate", "missing-model"]])  # fmt: skip
def test_bad_arguments_one_line(args):
    proc = run(*args, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr


def test_joint_vae_train_and_encode_each_modality(tmp_path):
    ck = tmp_path / "joint.safetensors"
    line = json.loads(run("train", "--dataset", "mnist+label", "--model", "joint-vae", "--latent-dim", "4", "--epochs", "1",
                          "--fusion", "poe", "--cca-weight", "1", "--adv-weight", "0.5", "--out", str(ck)).stdout.splitlines()[-1])  # fmt: skip
    assert {"unimodal", "cca", "adv"} <= set(line)
    meta = json.loads(run("info", str(ck)).stdout)
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
