"""Under SLURM, Lightning loads the newest `hpc_ckpt_<n>.ckpt` of the run directory whenever a stage starts without a
checkpoint path; trickbench deletes those requeue checkpoints once the fit they resumed has completed, so the test
after fit scores the final weights (a requeued run reported the test metrics of an earlier requeue's weights)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from lightning.pytorch import Callback

from trickbench.lightning_cli import main

ROOT = Path(__file__).resolve().parents[1]
STALE = "TRICKBENCH_TEST_STALE_CKPT"  # env: the checkpoint PlantHpcCheckpoint copies in


class PlantHpcCheckpoint(Callback):
    """At the end of training, leave an `hpc_ckpt_1.ckpt` holding other weights, as a requeue would have."""

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            shutil.copy(os.environ[STALE], Path(trainer.default_root_dir) / "hpc_ckpt_1.ckpt")


def fit(run: Path, *extra: str) -> dict:
    args = ["fit", "--config", str(ROOT / "configs" / "synthetic_mlp.yaml"), "--trainer.max_epochs=2"]
    main([*args, "--trainer.logger=false", "--data.init_args.n_train=512", f"--run_dir={run}", *extra])
    return json.loads((run / "metrics.json").read_text())


def test_the_test_after_a_requeued_fit_scores_the_final_weights(tmp_path: Path, monkeypatch) -> None:
    other = fit(tmp_path / "other", "--seed_everything=7", "--trainer.max_epochs=1")
    monkeypatch.setenv(STALE, str(tmp_path / "other" / "checkpoints" / "last.ckpt"))
    plain = fit(tmp_path / "plain")
    for key, value in {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "tb-x", "SLURM_JOB_ID": "7", "SLURM_PROCID": "0"}.items():
        monkeypatch.setenv(key, value)  # Lightning's SLURMEnvironment.detect() is true from here on
    monkeypatch.setenv("SLURM_NODELIST", "localhost")
    monkeypatch.setenv("SLURM_LOCALID", "0")
    monkeypatch.setenv("SLURM_NODEID", "0")
    requeued = fit(tmp_path / "requeued", "--trainer.callbacks+=tests.test_hpc_checkpoints.PlantHpcCheckpoint")
    assert requeued["test"] == plain["test"] != other["test"]  # the final weights, not the planted ones
    assert not list((tmp_path / "requeued").glob("hpc_ckpt_*.ckpt"))  # superseded by last.ckpt: gone
    assert pytest.approx(requeued["test"]["loss"]) == plain["test"]["loss"]
