"""A tiny real ablation end to end: the real trainer on fake CIFAR-10, a KD teacher prerequisite,
2 arms x 2 seeds, then the report. Checks wiring (fragments, generated KD fragment, run dirs,
metrics.json, report), not accuracy: each run is 2 optimizer steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from trickbench.scripts import ablate, report

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_real_ablation_with_teacher_then_report(fake_cifar: Path, tmp_path: Path) -> None:
    spec = {
        "name": "tiny",
        "base": [str(REPO / "configs/cifar10_resnet20.yaml"), str(REPO / "configs/trainer/cpu_smoke.yaml")],
        "overrides": [
            f"--data.init_args.data_dir={fake_cifar}",
            "--data.init_args.accept_nonoriginal=true",
            "--data.init_args.val_size=64",
            "--data.init_args.batch_size=32",
        ],
        "seeds": [0, 1],
        "seed_keys": ["seed_everything", "data.init_args.seed"],
        "prerequisites": {"teacher": {"overrides": ["--trainer.limit_train_batches=3"]}},
        "arms": {
            "baseline": [],
            "kd": {"fragments": [str(REPO / "configs/tricks/kd.yaml")], "teacher": "teacher"},
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    assert ablate.main([str(path), "--runs-dir", str(runs), "--jobs", "2"]) == 0
    root = runs / "tiny"
    for label in ("prerequisites/teacher/seed0", "baseline/seed0", "baseline/seed1", "kd/seed0", "kd/seed1"):
        record = json.loads((root / label / "metrics.json").read_text())
        assert record["status"] == "completed" and 0.0 <= record["test"]["acc"] <= 1.0, label
        assert (root / label / "checkpoints" / "last.ckpt").is_file()
    teacher = json.loads((root / "prerequisites/teacher/seed0/metrics.json").read_text())
    assert teacher["global_step"] == 3  # its own override applied
    resolved = yaml.safe_load((root / "kd/seed1/config.yaml").read_text())
    kd = next(c for c in resolved["trainer"]["callbacks"] if c["class_path"].endswith("KnowledgeDistillation"))
    assert kd["init_args"]["teacher_checkpoint"] == str(
        (root / "prerequisites/teacher/seed0/checkpoints/last.ckpt").resolve()
    )
    assert kd["init_args"]["teacher"]["class_path"].endswith("ResNet20")  # the teacher's own net, not kd.yaml's
    assert resolved["seed_everything"] == 1 and resolved["data"]["init_args"]["seed"] == 1
    assert ablate.main([str(path), "--runs-dir", str(runs)]) == 0  # all finished: nothing re-runs
    assert (root / "baseline/seed0/stdout.log").read_text().count("# 20") == 1

    rows = report.write_report(root, tmp_path / "out")
    assert [(r["arm"], r["n"]) for r in rows] == [("baseline", 2), ("kd", 2)]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| kd | 2 |" in md and "`prerequisites/teacher/seed0`" in md
    assert len(list((tmp_path / "out" / "raw").rglob("metrics.json"))) == 5
