"""`trickbench ablate FILE --restore RAW`: a sweep carried to another machine through a committed report's raw/
folder (the torch-free fake trainer): finished runs are not trained again, the teacher comes back with its weights
and net, a run whose test-only evaluation is missing trains again, nothing is overwritten, and a raw folder of
another definition is refused before anything is copied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_ablate import write
from trickbench.scripts import ablate, report

pytestmark = pytest.mark.usefixtures("fake_trainer")  # tests/conftest.py: the torch-free stand-in trains


def distilling_factorial(tmp: Path) -> str:
    """Four two-level factors in 8 runs (resolution IV), one of them distils from a teacher; TTA test-only."""
    factors = {n: [write(tmp / f"{n}.yaml", {"fake": {"add": v}})] for n, v in (("warm", 0.02), ("smooth", -0.01))}
    factors["ema"] = [write(tmp / "ema.yaml", {"fake": {"add": 0.0}})]
    factors["kd"] = {
        "fragments": [write(tmp / "kd.yaml", {"fake": {"add": 0.01}, "teacher_checkpoint": None})],
        "teacher": "teacher",
    }
    spec = {
        "name": "carried",
        "design": "factorial",
        "base": [write(tmp / "base.yaml", {"fake": {"acc": 0.8, "noise": 0.002}})],
        "seeds": [0],
        "resolution": 4,
        "prerequisites": {"teacher": {"seed": 100}},
        "factors": factors,
        "test_factors": {"tta": [write(tmp / "tta.yaml", {"fake": {"add": 0.005}})]},
    }
    return write(tmp / "carried.yaml", spec)


def trained_here(run_dir: Path) -> bool:
    return (run_dir / "calls.json").is_file()  # the fake trainer appends every call it gets there


def first_sitting(tmp: Path) -> tuple[str, Path]:
    path = distilling_factorial(tmp)
    assert ablate.main([path, "--runs-dir", str(tmp / "a")]) == 0
    assert report.main([str(tmp / "a" / "carried"), "--out", str(tmp / "report")]) == 0
    return path, tmp / "report" / "raw"


def test_a_restored_sweep_trains_only_what_raw_lacks_and_reports_the_same(tmp_path: Path, capsys) -> None:
    path, raw = first_sitting(tmp_path)
    teacher = raw / "prerequisites" / "teacher" / "seed100"
    assert (teacher / "checkpoints" / "last.ckpt").read_text() == "fake checkpoint"  # kept for the students
    assert (teacher / "config.yaml").is_file()
    assert not (raw / "r00" / "seed0" / "checkpoints").exists()  # only a teacher's weights are kept
    shutil.rmtree(raw / "r3+tta" / "seed0")  # the sitting ended before r3's TTA test ran
    capsys.readouterr()

    b = tmp_path / "b"
    assert ablate.main([path, "--runs-dir", str(b), "--restore", str(raw)]) == 0
    out = capsys.readouterr().out
    assert f"restored 15 finished run(s) from {raw}" in out
    assert "not restored r3/seed0: its test-only evaluation r3+tta/seed0 is not in raw/" in out
    root = b / "carried"
    assert not trained_here(root / "prerequisites" / "teacher" / "seed100")
    assert (root / "prerequisites" / "teacher" / "seed100" / "checkpoints" / "last.ckpt").is_file()
    retrained = {d.parent.name for d in root.glob("*/seed0") if trained_here(d)}
    assert retrained == {"r3", "r3+tta"}
    for arm in ("r0", "r5", "r5+tta"):
        assert (root / arm / "seed0" / "metrics.json").read_bytes() == (
            raw / arm / "seed0" / "metrics.json"
        ).read_bytes()
    kd_rows = [
        r["arm"] for r in json.loads((raw / "plan.json").read_text())["design"]["rows"] if r["levels"]["kd"] == "on"
    ]
    assert len(kd_rows) == 4 and not any(trained_here(root / a / "seed0") for a in kd_rows if a != "r3")

    assert report.main([str(root), "--out", str(tmp_path / "again")]) == 0
    for name in ("report.md", "effects.csv"):
        assert (tmp_path / "again" / name).read_text() == (tmp_path / "report" / name).read_text(), name

    # restoring again keeps every run folder as it is: nothing is overwritten
    before = {p: p.read_bytes() for p in root.rglob("metrics.json")}
    assert ablate.main([path, "--runs-dir", str(b), "--restore", str(raw)]) == 0
    assert "restored 0 finished run(s)" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in root.rglob("metrics.json")} == before


def test_a_teacher_without_its_weights_in_raw_trains_again(tmp_path: Path, capsys) -> None:
    path, raw = first_sitting(tmp_path)
    shutil.rmtree(raw / "prerequisites" / "teacher" / "seed100" / "checkpoints")
    capsys.readouterr()
    assert ablate.main([path, "--runs-dir", str(tmp_path / "b"), "--restore", str(raw)]) == 0
    assert "not restored prerequisites/teacher/seed100: a teacher without its checkpoint" in capsys.readouterr().out
    assert trained_here(tmp_path / "b" / "carried" / "prerequisites" / "teacher" / "seed100")


def test_raw_runs_of_another_definition_are_refused_before_anything_is_copied(tmp_path: Path, capsys) -> None:
    path, raw = first_sitting(tmp_path)
    capsys.readouterr()
    b = tmp_path / "b"
    argv = [path, "--runs-dir", str(b), "--restore", str(raw), "--set", "data.init_args.data_dir=/elsewhere"]
    assert ablate.main(argv) == 2
    err = capsys.readouterr().err
    assert "run(s) there have another definition than this plan" in err and "nothing was copied" in err
    assert not list(b.rglob("metrics.json"))
    assert ablate.main([path, "--runs-dir", str(b), "--restore", str(tmp_path / "nowhere")]) == 2
    assert "cannot read its plan.json" in capsys.readouterr().err


def test_the_report_says_where_the_runs_ran_and_flags_two_kinds_of_processor(tmp_path: Path) -> None:
    _, raw = first_sitting(tmp_path)
    text = (tmp_path / "report" / "report.md").read_text()
    assert (
        "## Where the runs ran" in text
        and "- 17 run(s): no provenance recorded" in text
        and "kinds of processor" not in text
    )
    for i, record in enumerate(sorted(raw.rglob("metrics.json"))):  # a sweep carried from one machine to another
        data = json.loads(record.read_text())
        data["provenance"] = {"cpu": "AMD EPYC" if i % 2 else "Intel Xeon", "torch_threads": 1}
        record.write_text(json.dumps(data))
    assert report.main([str(raw), "--out", str(tmp_path / "mixed")]) == 0
    text = (tmp_path / "mixed" / "report.md").read_text()
    assert "**The runs ran on 2 kinds of processor.**" in text
    assert "AMD EPYC, 1 torch thread(s)" in text and "Intel Xeon, 1 torch thread(s)" in text
    for i, record in enumerate(sorted(raw.rglob("metrics.json"))):  # one CPU name, two kinds of kernels
        data = json.loads(record.read_text())
        data["provenance"] = {"cpu": "AMD EPYC", "cpu_capability": "AVX512" if i % 2 else "AVX2", "torch_threads": 1}
        record.write_text(json.dumps(data))
    assert report.main([str(raw), "--out", str(tmp_path / "isa")]) == 0
    text = (tmp_path / "isa" / "report.md").read_text()
    assert "**The runs ran on 2 kinds of processor.**" in text and "AMD EPYC (AVX2), 1 torch thread(s)" in text
