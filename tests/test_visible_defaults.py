"""configs/trainer/default.yaml: the run's defaults are in its config.yaml, and that file alone reproduces the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import fit_smoke
from trickbench.lightning_cli import main

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CALLBACKS = [
    "trickbench.run.ExactResume",
    "trickbench.run.FiniteLossGuard",
    "trickbench.run.LastCheckpoint",
    "trickbench.run.LearningRateMonitor",
]


def callback_paths(run: Path) -> list[str]:
    return [c["class_path"] for c in yaml.safe_load((run / "config.yaml").read_text())["trainer"]["callbacks"]]


def test_saved_config_reproduces_the_run_bit_for_bit(fake_mnist: Path, tmp_path: Path) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    # dropout + mixup draw from the global RNG every batch: ExactResume's reseed must be in config.yaml for this
    fit_smoke(
        "configs/mnist_cnn.yaml",
        fake_mnist,
        first,
        "--config",
        "configs/tricks/mixup.yaml",
        "--trainer.max_epochs",
        "2",
    )
    cfg = yaml.safe_load((first / "config.yaml").read_text())
    assert callback_paths(first)[:4] == DEFAULT_CALLBACKS
    assert cfg["trainer"]["plugins"] == [{"class_path": "trickbench.run.AtomicCheckpointIO"}]
    assert cfg["trainer"]["enable_progress_bar"] is False  # resolved: stdout is not a terminal under pytest

    main(["fit", "--config", str(first / "config.yaml"), "--run_dir", str(again)])

    a, b = (json.loads((r / "metrics.json").read_text()) for r in (first, again))
    assert a["global_step"] == b["global_step"] >= 2
    assert a["test"] == b["test"] and a["val"] == b["val"]  # floats, compared exactly
    wa, wb = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for r in (first, again))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    cfg_b = yaml.safe_load((again / "config.yaml").read_text())
    assert cfg_b.pop("run_dir") == str(again) and cfg.pop("run_dir") == str(first)
    assert cfg_b == cfg  # nothing was added the second time
    assert sorted(p.name for p in (first / "checkpoints").iterdir()) == ["last.ckpt"]  # one checkpoint per run


def test_a_config_that_replaces_the_callback_list_keeps_the_guarantees(
    fake_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = tmp_path / "replaces.yaml"
    recipe.write_text(
        "trainer:\n  callbacks:\n    - class_path: callbacks.LRWarmup\n      init_args: {warmup_steps: 2}\n"
    )
    run = tmp_path / "run"
    fit_smoke("configs/mnist_cnn.yaml", fake_mnist, run, "--config", str(recipe))
    assert callback_paths(run) == [
        "trickbench.callbacks.LRWarmup",
        *DEFAULT_CALLBACKS,
        "trickbench.run.PlainProgress",
    ]
    note = capsys.readouterr().err
    assert "added back" in note and "ExactResume, FiniteLossGuard, LastCheckpoint" in note


def test_a_configured_model_checkpoint_replaces_last_checkpoint(fake_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fit_smoke(
        "configs/mnist_cnn.yaml",
        fake_mnist,
        run,
        "--config",
        "configs/trainer/keep_epoch_checkpoints.yaml",
        "--trainer.max_epochs",
        "2",
    )
    paths = callback_paths(run)
    assert "trickbench.run.LastCheckpoint" not in paths and "lightning.pytorch.callbacks.ModelCheckpoint" in paths
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert [n.split("-")[0] for n in names] == ["epoch=0", "epoch=1", "last.ckpt"]
