"""Exact resume: a run killed mid-training and resumed from its last checkpoint ends bitwise where an
uninterrupted run ends (CPU), with warmup, scheduled stochastic depth, mixup/CutMix, cutout and the
data order all active; the W&B run id resumes with it.

The killed run is a subprocess that `os._exit`s (no handler runs, as on a power cut or SIGKILL).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_fake_cifar, subprocess_env
from tiny_net import tiny_airbench_yaml

from trickbench.datamodules.base import TensorLoader
from trickbench.lightning_cli import main

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "tests" / "ddp_scripts"
sys.path.insert(0, str(HELPERS))  # killswitch.RecordBatches for the in-process runs

# 256 train images / batch 32 = 8 batches per epoch; 12 steps = 1.5 epochs.
CONFIG = """
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  precision: 32-true
  max_steps: 12
  max_epochs: 100
  log_every_n_steps: 1
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  callbacks:
    - class_path: callbacks.LRWarmup
      init_args: {{warmup_steps: 4}}
    - class_path: callbacks.StochasticDepthScheduler
      init_args: {{base_rate: 0.3, schedule: linear_up, interval: step}}
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {run}/checkpoints, save_last: true, every_n_train_steps: {every}, save_top_k: 0}}
    - class_path: killswitch.RecordBatches
      init_args: {{path: {run}/trace}}
model:
  class_path: lightning_modules.Classifier
  init_args:
    net: {net}
    optimizer:
      class_path: torch.optim.SGD
      init_args: {{lr: 0.1, momentum: 0.9, nesterov: true}}
    lr_scheduler:
      class_path: torch.optim.lr_scheduler.OneCycleLR
      init_args: {{max_lr: 0.1}}
    label_smoothing: 0.1
    batch_mix:
      class_path: lightning_modules.ops.mixup.MixupCutmix
      init_args: {{num_classes: 10, mixup_alpha: 0.4, cutmix_alpha: 1.0, prob: 0.8}}
data:
  class_path: datamodules.CIFAR10DataModule
  init_args: {{data_dir: {data}, val_size: 64, accept_nonoriginal: true, batch_size: 32, eval_batch_size: 64,
               cutout: 4}}
"""


def write_config(run: Path, data: Path, every: int) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    path = run.parent / f"{run.name}.yaml"
    path.write_text(CONFIG.format(run=run, data=data, every=every, net=tiny_airbench_yaml()))
    return path


def trace(run: Path) -> dict[int, dict]:
    """Per optimizer step, the last record (a resumed run re-does the steps after its checkpoint)."""
    rows = [json.loads(line) for line in (run / "trace.rank0").read_text().splitlines()]
    return {r["step"]: r for r in rows}


def csv_rows(run: Path) -> set[tuple]:
    """The CSV log's rows, each as its non-empty (column, value) pairs."""
    with open(run / "csv" / "metrics.csv") as fh:
        return {tuple(sorted((k, v) for k, v in r.items() if v)) for r in csv.DictReader(fh)}


def train_acc_by_epoch(run: Path) -> dict[str, str]:
    with open(run / "csv" / "metrics.csv") as fh:
        return {r["epoch"]: r["train/acc"] for r in csv.DictReader(fh) if r.get("train/acc")}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_fake_cifar(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    cli = main(["fit", "--config", str(write_config(run, data, every=3)), "--run_dir", str(run)])
    assert type(cli.trainer.strategy.checkpoint_io).__name__ == "AtomicCheckpointIO"
    return run


@pytest.mark.slow
@pytest.mark.parametrize(("every", "kill_at"), [(3, 7), (4, 8)], ids=["mid-epoch", "epoch-boundary"])
def test_killed_run_resumes_bitwise_identical(straight, data, tmp_path, monkeypatch, every, kill_at):
    run = tmp_path / "run"
    cfg = write_config(run, data, every)
    wandb_mode = "offline" if every == 3 else "disabled"  # W&B resume checked once (offline, no network)
    kill = ["--trainer.callbacks+", "killswitch.KillAtStep", "--trainer.callbacks.step", str(kill_at)]
    proc = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", str(cfg), "--run_dir", str(run), *kill],
        cwd=ROOT,
        env=subprocess_env(wandb_mode),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 17, proc.stderr[-3000:]  # killed, not finished
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == kill_at // every * every < 12  # resumes from an earlier step

    monkeypatch.setenv("WANDB_MODE", wandb_mode)
    main(["fit", "--config", str(cfg), "--run_dir", str(run), "--ckpt_path", "last"])

    want = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    got = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert got["global_step"] == want["global_step"] == 12
    assert want["state_dict"].keys() == got["state_dict"].keys()
    for key, value in want["state_dict"].items():  # weights, BN stats, drop-path rates, train-acc counts
        assert torch.equal(value, got["state_dict"][key]), key
    # Every step saw the same augmented batch, LR, drop rates and loss.
    assert trace(run) == trace(straight)
    want_m, got_m = (json.loads((r / "metrics.json").read_text()) for r in (straight, run))
    assert got_m["status"] == "completed" and got_m["test"] == want_m["test"]
    assert train_acc_by_epoch(run)["1"] == train_acc_by_epoch(straight)["1"]  # epoch 1 spans the kill
    if wandb_mode == "offline":
        run_id = (run / "wandb_run_id").read_text().strip()
        dirs = sorted((run / "wandb").glob("offline-run-*"))
        assert len(dirs) == 2 and {d.name.rsplit("-", 1)[1] for d in dirs} == {run_id}


def _prefetching_resume(consumed_fn_used: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Take 3 batches the way Lightning does (one pre-fetched ahead), checkpoint, resume in a new loader."""
    x, y = torch.arange(64).float()[:, None], torch.arange(64)
    taken = {"n": 0}
    kwargs = {"batch_size": 8, "shuffle": True, "drop_last": True, "seed": 3}
    loader = TensorLoader(x, y, consumed_fn=(lambda: taken["n"]) if consumed_fn_used else None, **kwargs)
    it = iter(loader)
    ahead = next(it)
    for _ in range(3):  # the loop takes a batch; the fetcher pulls the next one
        ahead = next(it)
        taken["n"] += 1
    resumed = TensorLoader(x, y, **kwargs)
    resumed.load_state_dict(loader.state_dict())
    return next(iter(resumed))[1], ahead[1]


def test_loader_state_counts_batches_taken_not_prefetched():
    first_after_resume, expected = _prefetching_resume(consumed_fn_used=True)
    assert torch.equal(first_after_resume, expected)
    skipped, expected = _prefetching_resume(consumed_fn_used=False)  # counting yields skips a batch
    assert not torch.equal(skipped, expected)


def test_loader_state_after_last_batch_starts_next_epoch_at_zero():
    x, y = torch.zeros(32, 1), torch.arange(32)
    loader = TensorLoader(x, y, batch_size=8, shuffle=True, drop_last=True, consumed_fn=lambda: 4)
    it = iter(loader)
    for _ in range(len(loader)):  # Lightning stops at len() without exhausting the generator
        next(it)
    assert loader.state_dict()["batches_done"] == 0


@pytest.mark.slow
def test_sigterm_checkpoints_records_interrupted_exits_143_and_resumes_bitwise(straight, data, tmp_path, monkeypatch):
    """SIGTERM (kill, SLURM time limit) at step 5: Lightning finishes that batch and stops. The stop leaves a
    checkpoint of step 6 (the periodic one is step 3), `status: interrupted` with the signal, exit code 143;
    the resumed run ends bitwise where the uninterrupted one does."""
    run = tmp_path / "run"
    cfg = write_config(run, data, every=3)
    term = ["--trainer.callbacks+", "killswitch.SigtermAtStep", "--trainer.callbacks.step", "5"]
    proc = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", str(cfg), "--run_dir", str(run), *term],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 143, proc.stderr[-3000:]
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM" and "test" not in record
    assert record["segments"][0]["exit"] == "interrupted: SIGTERM"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6

    main(["fit", "--config", str(cfg), "--run_dir", str(run), "--ckpt_path", "last"])
    want = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    got = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, got[k]) for k, v in want.items())
    assert trace(run) == trace(straight)
    final = json.loads((run / "metrics.json").read_text())
    assert final["status"] == "completed" and "signal" not in final and len(final["segments"]) == 2
    # The CSV log holds every row the uninterrupted run logged, those of steps 0-5 (before the stop) included:
    # Lightning's CSV writer deleted an existing metrics.csv when the resumed process started.
    early = {row for row in csv_rows(straight) if int(dict(row)["step"]) < 6}
    assert len(early) >= 5 and early <= csv_rows(run)
    assert csv_rows(straight) <= csv_rows(run)
