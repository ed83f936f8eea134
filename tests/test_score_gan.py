"""scripts/score_gan.py end to end: a tiny classifier run and a tiny GAN run on fake MNIST files."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import fit_smoke

from trickbench.scripts.score_gan import classifier_score, trajectory
from trickbench.scripts.score_gan import main as score_main


def test_classifier_score_by_hand():
    eye = torch.eye(4, dtype=torch.float64)
    # confident and spread evenly over 4 classes: KL(p(y|x) || p(y)) = log 4 for every sample -> score 4
    assert classifier_score(eye.repeat(5, 1))["score"] == pytest.approx(4.0, rel=1e-9)
    # every sample the same distribution: no information -> score 1, whatever the distribution
    assert classifier_score(torch.tensor([[0.7, 0.1, 0.1, 0.1]] * 6))["score"] == pytest.approx(1.0, rel=1e-9)
    # two confident classes out of four, 3:1: E[KL] = 3/4 log(4/3) + 1/4 log 4
    probs = torch.cat([eye[[0, 0, 0]], eye[[1]]])
    expect = math.exp(0.75 * math.log(4 / 3) + 0.25 * math.log(4))
    out = classifier_score(probs, min_share=0.3)
    assert out["score"] == pytest.approx(expect, rel=1e-6)
    assert out["class_share"] == [0.75, 0.25, 0.0, 0.0] and out["coverage"] == 1  # 0.25 < min_share 0.3


def test_score_and_trajectory_of_a_tiny_gan_run(fake_mnist, tmp_path):
    fit_smoke("configs/mnist_mlp.yaml", fake_mnist, tmp_path / "clf")
    fit_smoke(
        "configs/mnist_gan.yaml",
        fake_mnist,
        tmp_path / "gan",
        "--config",
        "configs/trainer/keep_epoch_checkpoints.yaml",
        "--trainer.max_epochs",
        "2",
        "--trainer.val_check_interval",
        "1.0",
        "--model.init_args.ema_decay",
        "0.9",
    )

    final = score_main(
        [
            "--gan_run",
            str(tmp_path / "gan"),
            "--classifier_run",
            str(tmp_path / "clf"),
            "--num_samples",
            "300",
            "--reference",
        ]
    )["generated"]
    assert final["coverage"] == sum(share >= 0.01 for share in final["class_share"])
    assert sum(final["class_share"]) == pytest.approx(1.0, abs=1e-3)
    assert json.loads((tmp_path / "gan" / "score.json").read_text())["generated"] == final

    rows = score_main(
        [
            "--gan_run",
            str(tmp_path / "gan"),
            "--classifier_run",
            str(tmp_path / "clf"),
            "--num_samples",
            "300",
            "--trajectory",
        ]
    )["trajectory"]
    assert [r["ckpt"] for r in rows] == ["epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt"]  # step order, 2 steps per batch
    assert rows[0]["ema"] != rows[0]["live"]  # two generators scored, not one twice
    # The last epoch checkpoint is last.ckpt: the plain score (EMA G, same seed) is its `ema` column.
    assert rows[-1]["ema"] == round(final["score"], 3)
    saved = [json.loads(line) for line in (tmp_path / "gan" / "trajectory.jsonl").read_text().splitlines()]
    assert saved == rows


def test_trajectory_without_epoch_checkpoints_says_how_to_get_them(tmp_path):
    (tmp_path / "gan" / "checkpoints").mkdir(parents=True)
    (tmp_path / "gan" / "checkpoints" / "last.ckpt").write_bytes(b"")  # a run that kept only last.ckpt
    with pytest.raises(FileNotFoundError, match="save_top_k"):
        trajectory(tmp_path / "gan", classifier=None, cdm=None, n=10, seed=0, min_share=0.01)
