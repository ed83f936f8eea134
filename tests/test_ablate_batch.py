"""`trickbench ablate --per-process N`: several runs in one Python process give the same runs, bit for bit, as one
process per run (the real trainer on fake CIFAR-10; the CPU ablation base with a tiny net, 2 steps each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.tiny_net import tiny_airbench_yaml
from trickbench.scripts import ablate

REPO = Path(__file__).resolve().parents[1]
RUNS = ("baseline/seed0", "baseline/seed1", "mixup/seed0", "mixup/seed1", "tta/seed0", "tta/seed1")


def tiny_ablation(tmp_path: Path, data: Path) -> Path:
    net = tmp_path / "tiny_net.yaml"
    net.write_text(
        "model:\n  init_args:\n    net: " + tiny_airbench_yaml(drop_path_rate=0.0, residual=True, stem_width=24) + "\n"
    )
    spec = {
        "name": "batch",
        "base": [str(REPO / "configs/cifar10_cpu_fast.yaml"), str(net), str(REPO / "configs/trainer/cpu_smoke.yaml")],
        "overrides": [
            f"--data.init_args.data_dir={data}",
            "--data.init_args.accept_nonoriginal=true",
            "--data.init_args.batch_size=16",
            "--data.init_args.eval_batch_size=16",
            "--trainer.limit_test_batches=2",
        ],
        "seeds": [0, 1],
        "seed_keys": ["seed_everything", "data.init_args.seed"],
        "arms": {
            "baseline": [],
            "mixup": [str(REPO / "configs/tricks/mixup.yaml")],  # draws from the RNG every step
            "tta": {"fragments": [str(REPO / "configs/ablations/tricks/tta.yaml")], "evaluate": "baseline"},
        },
    }
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["state_dict"]


@pytest.mark.slow
def test_runs_in_one_process_equal_runs_in_separate_processes(fake_cifar: Path, tmp_path: Path) -> None:
    path = tiny_ablation(tmp_path, fake_cifar)
    assert ablate.main([str(path), "--runs-dir", str(tmp_path / "separate")]) == 0
    assert ablate.main([str(path), "--runs-dir", str(tmp_path / "together"), "--per-process", "6"]) == 0
    sep, tog = tmp_path / "separate" / "batch", tmp_path / "together" / "batch"
    batches = sorted((tog / "batches").glob("*.json"))
    assert len(batches) == 2  # the 4 training runs in one process, then the 2 test-only runs (after baseline)
    assert sorted(len(json.loads(b.read_text())) for b in batches) == [2, 4]
    assert not (sep / "batches").exists()
    for label in RUNS:
        a, b = (json.loads((root / label / "metrics.json").read_text()) for root in (sep, tog))
        assert a["status"] == b["status"] == "completed", label
        assert a["test"] == b["test"], label  # exactly equal floats
        if not label.startswith("tta"):
            wa, wb = weights(sep / label), weights(tog / label)
            assert wa.keys() == wb.keys()
            assert all(torch.equal(wa[k], wb[k]) for k in wa), label
            assert a["global_step"] == b["global_step"] == 2
    # the runs differ from one another (a seed or an arm changes them), so equality above is not vacuous
    assert (
        weights(sep / "baseline/seed0")["net.head.2.weight"]
        .ne(weights(sep / "baseline/seed1")["net.head.2.weight"])
        .any()
    )
    assert (
        weights(sep / "baseline/seed0")["net.head.2.weight"].ne(weights(sep / "mixup/seed0")["net.head.2.weight"]).any()
    )
    # each run's output went to its own logs, not to the batch log
    assert "Trainer.fit" in (tog / "baseline/seed1/stderr.log").read_text()
    log = next((tog / "batches").glob("baseline_seed0.log")).read_text()
    assert "[batch 4/4]" in log and "Trainer.fit" not in log


def test_per_process_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        ablate.parse_args([str(tmp_path / "x.yaml"), "--per-process", "0"])
