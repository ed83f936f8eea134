"""The `trickbench` console command: an overview without torch, shipped configs by name from any directory, and
nets/ops importable without Lightning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_env
from trickbench.cli import overview, resolve_args, resolve_config, shipped

ROOT = Path(__file__).resolve().parents[1]


def test_overview_lists_every_shipped_config_with_a_description() -> None:
    text = overview()
    names = shipped()
    assert {"cifar10_fast", "tricks/ema", "trainer/default", "ablations/cifar10_cpu"} <= set(names)
    for name in names:
        line = next(ln for ln in text.splitlines() if ln.split()[:1] == [name])
        assert len(line.split(None, 1)) == 2, f"{name} has no description"  # its first comment line


def test_config_names_resolve_to_shipped_files_and_paths_stay(tmp_path: Path) -> None:
    fast = ROOT / "configs" / "cifar10_fast.yaml"
    for given in ("cifar10_fast", "cifar10_fast.yaml", "configs/cifar10_fast"):
        assert Path(resolve_config(given)) == fast
    own = tmp_path / "cifar10_fast.yaml"
    own.write_text("seed_everything: 1\n")
    assert resolve_config(str(own)) == str(own)  # an existing file wins over a name
    assert resolve_config("no_such_config") == "no_such_config"  # LightningCLI reports it
    assert resolve_args(["fit", "--config", "tricks/ema", "--config=tricks/mixup", "--trainer.max_epochs", "2"]) == [
        "fit",
        "--config",
        str(ROOT / "configs/tricks/ema.yaml"),
        "--config=" + str(ROOT / "configs/tricks/mixup.yaml"),
        "--trainer.max_epochs",
        "2",
    ]


def test_help_prints_the_overview_without_importing_torch() -> None:
    code = (
        "import runpy, sys; sys.argv = ['trickbench', '--help']; runpy.run_module('trickbench', "
        "run_name='__main__'); print('TORCH', 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "tricks/ema" in out.stdout and "cifar10_fast" in out.stdout and "TORCH False" in out.stdout


def test_nets_and_ops_import_without_lightning() -> None:
    code = (
        "import sys, lightning_modules.nets, lightning_modules.ops.tta, lightning_modules.ops.mixup; "
        "print('LIGHTNING', any(m.split('.')[0] == 'lightning' for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "LIGHTNING False" in out.stdout


def test_console_command_finds_configs_by_name_from_another_directory(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trickbench",
            "fit",
            "--config",
            "synthetic_mlp",
            "--config",
            "trainer/cpu_smoke",
            "--print_config",
        ],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "SyntheticRegressionDataModule" in out.stdout and "limit_train_batches: 2" in out.stdout
    assert "trickbench.run.ExactResume" in out.stdout  # the defaults fragment, applied first, is in the printed config
