"""Shared fixtures: tiny datasets written in the real on-disk formats (no network, no real data), and a smoke fit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(1)  # the suite shares 2 cores; 2-thread torch collapses under contention

from xdist.scheduler import LoadFileScheduling  # noqa: E402

from trickbench.datamodules.fake import make_fake_cifar, make_fake_mnist, write_idx  # noqa: E402, F401  (re-exported)

# Test files that share one pytest-xdist worker, one after the other: the SLURM test clusters take turns through a lock
# (tests/slurm_cluster.py), so on two workers one would sit idle waiting for the other.
SAME_WORKER = {"tests/test_slurm.py": "slurm clusters", "tests/test_slurm_multinode.py": "slurm clusters"}

if "_split_scope" not in vars(LoadFileScheduling):
    raise RuntimeError(
        "pytest-xdist's LoadFileScheduling no longer has `_split_scope`, which tests/conftest.py overrides to keep "
        "SAME_WORKER's files on one worker: update FileUnitScheduling to the installed pytest-xdist"
    )


class FileUnitScheduling(LoadFileScheduling):
    """`--dist=loadfile` where SAME_WORKER's files are one unit of work. Written here because xdist offers no public
    way to join files: `loadgroup`'s marks rename node ids, which pytest 9 no longer lets a plugin do."""

    def _split_scope(self, nodeid: str) -> str:
        path = super()._split_scope(nodeid)
        return SAME_WORKER.get(path, path)


def pytest_xdist_make_scheduler(config, log):
    return FileUnitScheduling(config, log) if config.getoption("dist") == "loadfile" else None


@pytest.fixture(autouse=True, scope="session")
def _cli_sees_only_its_own_args():
    """Tests call the CLI in-process with explicit args; pytest's own options in sys.argv would make LightningCLI
    warn (rightly) that both were given. Session-wide, so module-scoped fixtures that run the CLI see it too."""
    saved = sys.argv[:]
    sys.argv[:] = saved[:1]
    yield
    sys.argv[:] = saved


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    return make_fake_mnist(tmp_path / "data")


@pytest.fixture
def fake_cifar(tmp_path: Path) -> Path:
    return make_fake_cifar(tmp_path / "data")


def subprocess_env(wandb_mode: str = "disabled", **extra: str) -> dict[str, str]:
    """Environment of a CLI subprocess: one torch thread, the W&B mode, the repo and tests/ddp_scripts (callbacks
    the tests inject) on PYTHONPATH, and never this process's WANDB_SERVICE
    (`trickbench.run.run_dir.child_environ`)."""
    from trickbench.run.run_dir import child_environ

    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root / "tests" / "ddp_scripts"), str(root)])
    return child_environ(OMP_NUM_THREADS="1", WANDB_MODE=wandb_mode, PYTHONPATH=path, **extra)


def fit_smoke(cfg: str, data_dir: Path, run_dir: Path, *extra: str):
    """`trickbench fit` of a repo config on a fake MNIST/CIFAR folder with `configs/trainer/cpu_smoke.yaml`
    (a few CPU steps), a 32-image hold-out and no logger; `extra` are further CLI arguments."""
    from trickbench.lightning_cli import main as train_main

    return train_main(
        args=[
            "fit",
            "--config",
            cfg,
            "--config",
            "configs/trainer/cpu_smoke.yaml",
            "--data.init_args.data_dir",
            str(data_dir),
            "--data.init_args.val_size",
            "32",
            "--data.init_args.accept_nonoriginal",
            "true",
            "--trainer.logger",
            "false",
            "--run_dir",
            str(run_dir),
            *extra,
        ]
    )


@pytest.fixture
def fake_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ablation harness trains with tests/ablate_fake_train.py (torch-free, ~0.1 s a run) instead of `fit`."""
    from trickbench.scripts.ablation import plan as ablation

    fake = str(Path(__file__).with_name("ablate_fake_train.py"))
    monkeypatch.setattr(ablation, "TRAIN_CMD", [sys.executable, fake])
    monkeypatch.setattr(ablation, "TEST_CMD", [sys.executable, fake, "test"])
    monkeypatch.setattr(ablation, "PREFLIGHT_CMD", [sys.executable, fake, "preflight"])
