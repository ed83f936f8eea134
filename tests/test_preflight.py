"""The harness's preflight with the real checker (`trickbench.scripts.ablation.preflight`): a shared error stops a
sweep before any run starts; a sound sweep passes it. The harness side with a stand-in checker is in
tests/test_ablate.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from trickbench.lightning_modules.nets import MLP
from trickbench.scripts import ablate
from trickbench.scripts.ablation.preflight import PreflightError, check

ROOT = Path(__file__).resolve().parents[1]
MNIST_MLP = str(ROOT / "configs" / "mnist_mlp.yaml")


def ablation(tmp: Path, data_dir: Path, arms: dict | None = None, seeds: tuple[int, ...] = (0, 1)) -> str:
    """2 arms x 2 seeds (or `seeds`) of the MNIST MLP on `data_dir`."""
    spec = {
        "name": "toy",
        "base": [MNIST_MLP],
        "overrides": [
            f"--data.init_args.data_dir={data_dir}",
            "--data.init_args.accept_nonoriginal=true",
            "--data.init_args.download=false",  # tests never reach the network
        ],
        "seeds": list(seeds),
        "seed_keys": ["seed_everything", "data.init_args.seed"],
        "arms": arms or {"baseline": [], "smoothing": [str(ROOT / "configs" / "tricks" / "label_smoothing.yaml")]},
    }
    path = tmp / "ablation.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_missing_data_stops_a_4_run_sweep_before_any_run_starts(tmp_path: Path, capsys) -> None:
    path = ablation(tmp_path, tmp_path / "nowhere")
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("error: preflight: baseline/seed0: DatasetError: MNIST: missing file")
    assert str(tmp_path / "nowhere") in err[0] and "Nothing was started" in err[1]
    assert "[start" not in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ablation.yaml"]  # no run folder, no data folder


def entry(label: str, args: list[str], teacher: str | None = None) -> dict:
    return {"label": label, "args": args, "teacher": teacher}


def test_preflight_passes_a_sound_sweep_and_names_the_arm_of_each_shared_error(tmp_path: Path, fake_mnist) -> None:
    data = ["--config", MNIST_MLP, f"--data.init_args.data_dir={fake_mnist}", "--data.init_args.download=false"]
    data += ["--data.init_args.accept_nonoriginal=true"]
    ok = [entry("a/seed0", [*data, "--data.init_args.seed=0"]), entry("b/seed0", [*data, "--data.init_args.seed=1"])]
    assert check(ok) == 1  # two arms, one dataset (the seed is not part of what is checked)
    with pytest.raises(PreflightError, match=r"^b/seed0: .*label_smoothin"):
        check([ok[0], entry("b/seed0", [*data, "--model.init_args.label_smoothin=0.1"])])
    with pytest.raises(PreflightError, match=r"^a/seed0: DatasetError: MNIST: checksum mismatch"):
        check([entry("a/seed0", data[:-1])])  # a re-encoded copy without accept_nonoriginal
    bad = tmp_path / "teacher.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(PreflightError, match=r"^kd/seed0: .*teacher"):
        check([entry("kd/seed0", data, teacher=str(bad))])
    good = tmp_path / "good.pt"
    torch.save(MLP(784, [8], 10).state_dict(), good)
    assert check([entry("kd/seed0", data, teacher=str(good))]) == 1


def test_a_sound_sweep_passes_preflight_and_runs(tmp_path: Path, fake_mnist, capsys) -> None:
    """No false alarm: a sweep on present data passes the check and trains (2 runs of cpu_smoke steps at once)."""
    path = ablation(tmp_path, fake_mnist, seeds=(0,))
    spec = yaml.safe_load(Path(path).read_text())
    spec["base"].append(str(ROOT / "configs" / "trainer" / "cpu_smoke.yaml"))
    spec["overrides"] += ["--data.init_args.val_size=32", "--trainer.logger=false"]
    Path(path).write_text(yaml.safe_dump(spec))
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs"), "--jobs", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "preflight: 2 arm(s) parse, 1 dataset(s) present and intact" in out
    runs = sorted((tmp_path / "runs" / "toy").glob("*/seed*"))
    assert [r.relative_to(tmp_path / "runs" / "toy").as_posix() for r in runs] == ["baseline/seed0", "smoothing/seed0"]
    for run in runs:
        assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
