"""The CLI end to end on synthetic data: fit -> test, run directory contents, validate/test subcommands."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from trickbench.lightning_cli import main

ROOT = Path(__file__).resolve().parents[1]
SYNTH = str(ROOT / "configs" / "synthetic_mlp.yaml")
FAST = [
    "--trainer.max_epochs",
    "3",
    "--trainer.log_every_n_steps",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--data.init_args.n_train",
    "512",
]


def test_fit_writes_a_complete_run_directory(tmp_path):
    run = tmp_path / "run"
    main(["fit", "--config", SYNTH, "--run_dir", str(run), *FAST])
    assert (run / "checkpoints" / "last.ckpt").is_file()
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["class_path"] == "trickbench.lightning_modules.Regressor" and cfg["trainer"]["max_epochs"] == 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["global_step"] == 3 * 4
    assert metrics["data_fingerprint"] == "synthetic-sine-d8-seed0"
    assert 0 < metrics["test"]["loss"] < 1 and metrics["val"]["rmse"] > 0 and metrics["wall_seconds"] > 0
    rows = list(csv.DictReader(open(run / "csv" / "metrics.csv")))
    train = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(train) >= 2 and train[-1] < train[0]  # it trained
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)  # safe-loadable
    assert any(k.startswith("net.") for k in ckpt["state_dict"])


def test_test_subcommand_reproduces_fit_metrics(tmp_path):
    run = tmp_path / "run"
    main(["fit", "--config", SYNTH, "--run_dir", str(run), *FAST])
    fit_loss = json.loads((run / "metrics.json").read_text())["test"]["loss"]
    again = tmp_path / "again"
    main(
        [
            "test",
            "--config",
            SYNTH,
            "--run_dir",
            str(again),
            "--ckpt_path",
            str(run / "checkpoints" / "last.ckpt"),
            "--trainer.enable_progress_bar",
            "false",
            "--data.init_args.n_train",
            "512",
        ]
    )
    assert abs(json.loads((again / "metrics.json").read_text())["test"]["loss"] - fit_loss) < 1e-6


def test_print_config_and_bad_key_via_subprocess(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", SYNTH, "--print_config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0 and "SyntheticRegressionDataModule" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", SYNTH, "--model.init_args.lr", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode != 0 and "lr" in bad.stderr and "Traceback" not in bad.stderr


def test_wandb_without_key_runs_offline_and_leaves_no_process(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("WANDB")}
    env.update(HOME=str(tmp_path), OMP_NUM_THREADS="1")  # no ~/.netrc, no API key
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", SYNTH, "--run_dir", str(run), *FAST],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert list((run / "wandb").glob("offline-run-*")), "expected an offline W&B run"
    assert (run / "csv" / "metrics.csv").is_file()
    leftover = subprocess.run(["pgrep", "-f", f"wandb.*{run}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
