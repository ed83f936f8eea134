"""The learning rate is in every run's logs (trickbench's LearningRateMonitor in the trainer defaults): read back
from the CSV of a warmup + cosine run, per optimizer group, it equals the schedule at every logged step."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from wandb_records import finished_run_file, history

from trickbench.lightning_cli import main
from trickbench.lightning_modules.ops.schedules import warmup_factor

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["synthetic_mlp.yaml", "tricks/warmup.yaml", "tricks/cosine.yaml", "tricks/no_bias_decay.yaml"]


def test_lr_read_back_from_the_csv_equals_warmup_times_cosine(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = tmp_path / "run"
    args = ["fit", *(a for c in CONFIGS for a in ("--config", str(ROOT / "configs" / c)))]
    args += ["--trainer.max_epochs=3", "--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false"]
    args += ["--trainer.callbacks.init_args.warmup_steps=10", "--data.init_args.n_train=640"]
    args += ["--model.init_args.optimizer.init_args.weight_decay=0.01", f"--run_dir={run}", "--test_after_fit=false"]
    cli = main(args)
    total = cli.trainer.global_step
    assert total == 3 * 640 // 128 == 15  # 5 steps per epoch: the warmup covers 10 of 15
    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    groups = ["lr-Adam/pg1", "lr-Adam/pg2"]  # no bias decay: decayed weights, then 1-D parameters
    logged = {int(r["step"]): [float(r[g]) for g in groups] for r in rows if r.get(groups[0])}
    assert sorted(logged) == list(range(total)), sorted(logged)  # every optimizer step, each group
    for step, lrs in logged.items():
        cosine = 0.003 * (1 + math.cos(math.pi * step / total)) / 2
        want = cosine * warmup_factor(step, 10, "linear", 0.01)
        assert lrs == [pytest.approx(want, rel=1e-6, abs=1e-12)] * 2, (step, lrs, want)
    in_wandb = {
        int(r["trainer/global_step"]): [r[g] for g in groups]
        for r in history(finished_run_file(run / "wandb"))
        if groups[0] in r
    }
    assert in_wandb == logged  # the same values in the W&B run
