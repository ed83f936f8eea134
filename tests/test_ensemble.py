"""Ensemble with deferral (scripts/ensemble.py): agreement, coverage, ECE and the coverage curve on hand-made
probabilities with known answers, error paths, and an end-to-end run on two tiny MNIST runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import fit_smoke, make_fake_mnist

from trickbench.lightning_cli import main as train_main
from trickbench.run.record import Record
from trickbench.scripts import ensemble
from trickbench.scripts.ensemble import EnsembleError
from trickbench.scripts.ensembling.metrics import agreement, coverage_curve, expected_calibration_error, summarise

ROOT = Path(__file__).resolve().parents[1]


def onehotish(classes: list[int], conf: list[float], k: int = 3) -> torch.Tensor:
    """(N, k) probabilities: `conf` on the given class, the rest spread evenly."""
    p = torch.tensor([[(1 - c) / (k - 1)] * k for c in conf], dtype=torch.float64)
    for i, (cls, c) in enumerate(zip(classes, conf)):
        p[i, cls] = c
    return p


@pytest.fixture
def three_models():
    """6 images, labels 0 1 2 0 1 2. All agree on images 0-3 (right on 0, 1, 2; wrong on 3); they disagree on 4, 5."""
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    m0 = onehotish([0, 1, 2, 1, 1, 2], [0.9, 0.8, 0.6, 0.7, 0.9, 0.9])
    m1 = onehotish([0, 1, 2, 1, 0, 2], [0.9, 0.6, 0.6, 0.5, 0.9, 0.9])
    m2 = onehotish([0, 1, 2, 1, 1, 0], [0.9, 0.7, 0.9, 0.9, 0.9, 0.9])
    return torch.stack([m0, m1, m2]), labels


def test_agreement_coverage_and_agreed_accuracy(three_models):
    probs, labels = three_models
    assert agreement(probs.argmax(2)).tolist() == [True, True, True, True, False, False]
    res = summarise(probs, labels, ["a", "b", "c"])
    assert res["agreed"] == {"coverage": 4 / 6, "accuracy": 3 / 4, "deferred": 2}
    assert res["models"]["a"]["accuracy"] == pytest.approx(5 / 6)  # wrong only on image 3
    assert res["models"]["b"]["accuracy"] == pytest.approx(4 / 6)  # wrong on 3 and 4
    assert res["models"]["c"]["accuracy"] == pytest.approx(4 / 6)  # wrong on 3 and 5


def test_coverage_curve_endpoints_and_a_middle_threshold(three_models):
    probs, labels = three_models
    curve = {r["tau"]: r for r in coverage_curve(probs, labels)}
    assert curve[0.0]["coverage"] == 4 / 6 and curve[0.0]["accuracy"] == 3 / 4  # tau = 0: the agreed set
    assert curve[1.0]["coverage"] == 0 and torch.isnan(torch.tensor(curve[1.0]["risk"]))  # tau = 1: nothing
    # mean max-prob of the agreed images: 0.9, 0.7, 0.7, 0.7 -> > 0.75 keeps image 0 only (right).
    assert curve[0.75]["coverage"] == 1 / 6 and curve[0.75]["accuracy"] == 1.0 and curve[0.75]["risk"] == 0.0


def test_ece_against_a_hand_computation():
    # Confidences 0.9, 0.9 (one right) and 0.6, 0.6 (both right), 15 bins: the 0.9 bin contributes
    # 0.5 x |0.5 - 0.9| and the 0.6 bin 0.5 x |1.0 - 0.6|: ECE = 0.2 + 0.2.
    probs = onehotish([0, 0, 1, 1], [0.9, 0.9, 0.6, 0.6], k=2)
    labels = torch.tensor([0, 1, 1, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)
    perfect = onehotish([0, 1], [1.0, 1.0], k=2)
    assert expected_calibration_error(perfect, torch.tensor([0, 1])) == pytest.approx(0.0)


def test_runs_of_different_data_or_class_counts_are_refused():
    with pytest.raises(EnsembleError, match="different data.*'aaa'.*'bbb'"):
        ensemble.check_compatible(
            [Record(data_fingerprint="aaa"), Record(data_fingerprint="bbb")], [10, 10], ["x", "y"]
        )
    with pytest.raises(EnsembleError, match="different class counts"):
        ensemble.check_compatible([Record(data_fingerprint="a"), Record(data_fingerprint="a")], [10, 5], ["x", "y"])


def test_command_line_errors(tmp_path, capsys):
    assert ensemble.main([str(tmp_path)]) == 2 and "give 2 or 3 run directories" in capsys.readouterr().err
    assert ensemble.main([str(tmp_path), str(tmp_path)]) == 2 and "is not a finished run" in capsys.readouterr().err
    (tmp_path / "abl" / "baseline" / "seed0").mkdir(parents=True)
    assert ensemble.main(["--from-ablation", str(tmp_path / "abl"), "--arm", "baseline"]) == 2
    assert "has 0 completed seed run(s)" in capsys.readouterr().err


@pytest.mark.slow
def test_two_mnist_runs_end_to_end_and_per_model_accuracy_equals_the_test_subcommand(tmp_path):
    data = make_fake_mnist(tmp_path / "data", n_train=256, n_test=64)
    cfg = str(ROOT / "configs" / "mnist_mlp.yaml")
    runs = []
    for seed in (0, 1):
        run = tmp_path / "abl" / "baseline" / f"seed{seed}"
        fit_smoke(cfg, data, run, "--seed_everything", str(seed))
        runs.append(run)
    out = tmp_path / "ens"
    assert ensemble.main(["--from-ablation", str(tmp_path / "abl"), "--arm", "baseline", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    for name in ("report.md", "coverage.png", "reliability.png", "deferred.csv", "deferred.png"):
        assert (out / name).stat().st_size > 0, name
    deferred = (out / "deferred.csv").read_text().splitlines()
    assert len(deferred) - 1 == res["agreed"]["deferred"] == round(64 * (1 - res["agreed"]["coverage"]))
    for i, run in enumerate(runs):  # the same numbers as `trickbench test` on the whole test split
        cli = train_main(
            [
                "test",
                "--config",
                str(run / "config.yaml"),
                "--ckpt_path",
                str(run / "checkpoints" / "last.ckpt"),
                "--trainer.limit_test_batches",
                "1.0",
                "--trainer.logger",
                "false",
            ]
        )
        assert res["models"][f"m{i}:seed{i}"]["accuracy"] == pytest.approx(
            float(cli.trainer.callback_metrics["test/acc"])
        )
    again = tmp_path / "ens2"
    ensemble.main([str(runs[0]), str(runs[1]), "--out", str(again)])
    assert (again / "coverage.png").read_bytes() == (out / "coverage.png").read_bytes()  # byte-identical
    figures = {n: (out / n).read_bytes() for n in ("coverage.png", "reliability.png", "deferred.png")}
    assert ensemble.main([str(runs[0]), "--replot", str(out)]) == 0  # from results.json + deferred.csv alone
    assert {n: (out / n).read_bytes() for n in figures} == figures  # the very same figures


def test_deferred_images_are_spread_over_the_classes():
    labels = torch.arange(10).repeat_interleave(100)  # a test set sorted by class, as CIFAR-10's rendition
    deferred = torch.arange(0, 1000, 3)  # every third image: the first 64 would all be classes 0-1
    shown = ensemble.spread_over_classes(deferred, labels, 64)
    counts = torch.bincount(labels[shown], minlength=10)
    assert len(shown) == 64 and counts.min() >= 6 and counts.max() <= 7
    assert set(shown.tolist()) <= set(deferred.tolist())


def test_tau_labels_merge_equal_points_and_never_overlap():
    curve = [{"coverage": 0.9, "accuracy": 0.95, "tau": t} for t in (0.0, 0.05, 0.1)]  # the agreed set, 3 taus
    curve += [{"coverage": 0.89, "accuracy": 0.951, "tau": 0.15}]  # next to it: left unlabelled
    curve += [{"coverage": 0.5, "accuracy": 0.99, "tau": 0.5}, {"coverage": 0.0, "accuracy": 1.0, "tau": 1.0}]
    assert [t for _, _, t in ensemble.tau_labels(curve)] == ["τ=0-0.1", "τ=0.5"]
