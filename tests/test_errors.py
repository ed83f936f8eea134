"""Bad input gets one clear error and leaves nothing half-written (through the CLI where it matters).

Dataset-file damage, teacher checkpoints and ablation files are also covered next to their code:
tests/test_datamodules.py (missing/truncated/corrupt files), tests/test_tricks_kd.py (wrong
architecture, untrusted pickle), tests/test_ablate.py (ablation naming a missing fragment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import subprocess_env
from trickbench.datamodules.integrity import DatasetError
from trickbench.io import atomic_write_text
from trickbench.lightning_cli import main
from trickbench.lightning_modules.nets import MLP
from trickbench.run.atomic_checkpoint import AtomicCheckpointIO
from trickbench.run.finite_guard import NonFiniteLossError

ROOT = Path(__file__).resolve().parents[1]
SYNTH = str(ROOT / "configs" / "synthetic_mlp.yaml")
MNIST_MLP = str(ROOT / "configs" / "mnist_mlp.yaml")
SMOKE = str(ROOT / "configs" / "trainer" / "cpu_smoke.yaml")
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def cli_error(capsys, args: list[str]) -> str:
    """Run the CLI expecting a config error (argument parsing exits with status 2); return stderr."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_misspelt_top_level_key_is_named(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("trainer:\n  max_epoch: 3\n")  # max_epochs
    err = cli_error(capsys, ["fit", "--config", SYNTH, "--config", str(cfg), "--run_dir", str(tmp_path / "run")])
    assert "max_epoch" in err
    assert not (tmp_path / "run").exists()  # rejected before anything is created


def test_misspelt_nested_key_is_named(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model:\n  init_args:\n    net:\n      init_args: {hiden_dims: [8]}\n")  # hidden_dims
    err = cli_error(capsys, ["fit", "--config", SYNTH, "--config", str(cfg), "--run_dir", str(tmp_path / "run")])
    assert "hiden_dims" in err
    assert not (tmp_path / "run").exists()


def test_misspelt_key_error_is_the_last_thing_printed(tmp_path, capsys):
    err = cli_error(
        capsys,
        ["fit", "--config", SYNTH, "--model.init_args.label_smoothin", "0.1", "--run_dir", str(tmp_path / "run")],
    )
    lines = err.strip().splitlines()
    assert "usage:" not in err  # no usage dump (it was ~60 lines above the error)
    assert lines[-1].startswith("error: ") and "'label_smoothin' is not accepted" in lines[-1], lines[-3:]
    assert "NoneType" not in err and len(lines) <= 3  # jsonargparse's union report cut to the reason


def test_wrong_value_type_is_named(tmp_path, capsys):
    err = cli_error(
        capsys, ["fit", "--config", SYNTH, "--trainer.max_epochs", "three", "--run_dir", str(tmp_path / "r")]
    )
    assert "max_epochs" in err and "three" in err


def failed_record(run: Path) -> dict:
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert not (run / "checkpoints" / "last.ckpt").exists()  # no checkpoint of a run that never trained
    assert not list(run.rglob("*.tmp"))  # no temp file left behind
    return record


def test_classifier_on_regression_data_is_one_clear_error(tmp_path):
    run = tmp_path / "run"
    args = [
        "fit",
        "--config",
        MNIST_MLP,
        "--config",
        SMOKE,
        "--run_dir",
        str(run),
        *QUIET,
        "--data",
        "trickbench.datamodules.SyntheticRegressionDataModule",
        "--model.init_args.net.init_args.input_dim",
        "8",
    ]
    with pytest.raises(ValueError, match="Classifier.*cannot train on SyntheticRegressionDataModule.*Regressor"):
        main(args)
    assert "cannot train on" in failed_record(run)["error"]


def test_missing_dataset_without_download_is_one_clear_error(tmp_path):
    run = tmp_path / "run"
    args = [
        "fit",
        "--config",
        MNIST_MLP,
        "--config",
        SMOKE,
        "--run_dir",
        str(run),
        *QUIET,
        "--data.init_args.data_dir",
        str(tmp_path / "nowhere"),
        "--data.init_args.download",
        "false",
    ]
    with pytest.raises(DatasetError, match="missing file .*download=True"):
        main(args)
    assert os.listdir(tmp_path) == []  # checked before the run directory exists: no run folder, no data folder


def test_teacher_of_wrong_architecture_fails_before_training(tmp_path, fake_mnist):
    teacher = tmp_path / "teacher.pt"
    torch.save(MLP(784, [8], 10).state_dict(), teacher)  # declared below with hidden_dims [16]
    kd = tmp_path / "kd.yaml"
    kd.write_text(
        "trainer:\n  callbacks+:\n    - class_path: callbacks.KnowledgeDistillation\n      init_args:\n"
        "        teacher: {class_path: lightning_modules.nets.MLP, init_args: {input_dim: 784, hidden_dims: [16]}}\n"
        f"        teacher_checkpoint: {teacher}\n"
    )
    run = tmp_path / "run"
    args = [
        "fit",
        "--config",
        MNIST_MLP,
        "--config",
        SMOKE,
        "--config",
        str(kd),
        "--run_dir",
        str(run),
        *QUIET,
        "--data.init_args.data_dir",
        str(fake_mnist),
        "--data.init_args.accept_nonoriginal",
        "true",
        "--data.init_args.val_size",
        "32",
    ]
    with pytest.raises(ValueError, match="does not match the declared teacher net MLP"):
        main(args)
    failed_record(run)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    # SGD at lr 50 on MSE diverges: finite for a few steps, then inf/NaN (deterministic on CPU).
    args = [
        "fit",
        "--config",
        SYNTH,
        "--run_dir",
        str(run),
        *QUIET,
        "--trainer.max_epochs",
        "5",
        "--data.init_args.n_train",
        "512",
        "--model.init_args.optimizer",
        "torch.optim.SGD",
        "--model.init_args.optimizer.lr",
        "50",
        "--trainer.callbacks+",
        "lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath",
        str(run / "checkpoints"),
        "--trainer.callbacks.save_last",
        "true",
        "--trainer.callbacks.every_n_train_steps",
        "1",
        "--trainer.callbacks.save_top_k",
        "0",
    ]
    with pytest.raises(NonFiniteLossError, match=r"non-finite .* at global step (\d+)") as exc:
        main(args)
    step = int(exc.value.args[0].split("global step ")[1].split(" ")[0])
    assert 0 < step < 20
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == step  # the checkpoint of the step before the bad one
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "failed" and f"global step {step}" in record["error"]


def test_interrupted_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)

    def dies_half_way(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 2}, path)
    monkeypatch.undo()
    kept = torch.load(path, weights_only=True)
    assert kept["global_step"] == 1 and torch.equal(kept["state_dict"]["w"], torch.ones(3))
    assert os.listdir(path.parent) == ["last.ckpt"]  # the temp file is gone


def test_interrupted_metrics_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, '{"status": "completed"}\n')
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, '{"status": "fit_comp')
    assert json.loads(path.read_text()) == {"status": "completed"} and os.listdir(tmp_path) == ["metrics.json"]


def test_the_main_command_offline_ends_with_one_error_line_and_no_traceback(tmp_path: Path) -> None:
    """`trickbench fit --config cifar10_resnet18` with no data and no network (a proxy on a closed loopback port
    refuses the download): one `error:` line naming the folder and what to do, exit 2; TRICKBENCH_DEBUG=1 shows
    the traceback behind it."""
    offline = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}
    cmd = [
        sys.executable,
        "-m",
        "trickbench",
        "fit",
        "--config",
        "cifar10_resnet18",
        "--trainer.accelerator",
        "cpu",
        "--data.init_args.data_dir",
        str(tmp_path / "data"),
        "--run_dir",
        str(tmp_path / "run"),
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(**offline), capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CIFAR-10: download into") and "Offline?" in last
    assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)  # neither the data folder nor a run folder
    debug = subprocess.run(
        cmd[:-1] + [str(tmp_path / "run2")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=subprocess_env(TRICKBENCH_DEBUG="1", **offline),
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DatasetError" in debug.stderr
