"""scripts/score_gan.py end to end: a tiny classifier run and a tiny GAN run on fake MNIST files."""

from __future__ import annotations

import json

import pytest
from conftest import fit_smoke

from scripts.score_gan import main as score_main
from scripts.score_gan import trajectory


def test_score_and_trajectory_of_a_tiny_gan_run(fake_mnist, tmp_path):
    fit_smoke("configs/mnist_mlp.yaml", fake_mnist, tmp_path / "clf")
    fit_smoke("configs/mnist_gan.yaml", fake_mnist, tmp_path / "gan", "--config", "configs/trainer/keep_epoch_checkpoints.yaml",
         "--trainer.max_epochs", "2", "--trainer.val_check_interval", "1.0", "--model.init_args.ema_decay", "0.9")  # fmt: skip

    final = score_main(["--gan_run", str(tmp_path / "gan"), "--classifier_run", str(tmp_path / "clf"),
                        "--num_samples", "300", "--reference"])["generated"]  # fmt: skip
    assert 1.0 <= final["score"] <= 10.0 and 0 <= final["coverage"] <= 10
    assert sum(final["class_share"]) == pytest.approx(1.0, abs=1e-3)
    assert json.loads((tmp_path / "gan" / "score.json").read_text())["generated"] == final

    rows = score_main(["--gan_run", str(tmp_path / "gan"), "--classifier_run", str(tmp_path / "clf"),
                       "--num_samples", "300", "--trajectory"])["trajectory"]  # fmt: skip
    assert [r["ckpt"] for r in rows] == ["epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt"]  # step order, 2 steps per batch
    assert all(1.0 <= r[k] <= 10.0 for r in rows for k in ("ema", "live"))
    # The last epoch checkpoint is last.ckpt: the plain score (EMA G, same seed) is its `ema` column.
    assert rows[-1]["ema"] == round(final["score"], 3)
    saved = [json.loads(line) for line in (tmp_path / "gan" / "trajectory.jsonl").read_text().splitlines()]
    assert saved == rows


def test_trajectory_without_epoch_checkpoints_says_how_to_get_them(tmp_path):
    (tmp_path / "gan" / "checkpoints").mkdir(parents=True)
    (tmp_path / "gan" / "checkpoints" / "last.ckpt").write_bytes(b"")  # a run that kept only last.ckpt
    with pytest.raises(FileNotFoundError, match="save_top_k"):
        trajectory(tmp_path / "gan", classifier=None, cdm=None, n=10, seed=0, min_share=0.01)
