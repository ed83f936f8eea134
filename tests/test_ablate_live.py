"""The harness never touches a live run: when a harness dies and its running child does not (a lost login shell, a
killed tmux), the same command run again leaves that run alone (or waits for it with --wait) instead of moving its
folder aside and starting it again; and a run's identity does not depend on how its run directory is spelled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import subprocess_env
from trickbench.run.run_dir import lock_holder
from trickbench.scripts import ablate
from trickbench.scripts.ablation import plan as ablation
from trickbench.scripts.report import write_report

FAKE = Path(__file__).with_name("ablate_fake_train.py")
# The harness in its own process (so that it can be killed alone), with the torch-free stand-in trainer.
HARNESS = (
    "import sys; from trickbench.scripts.ablation import plan; plan.TRAIN_CMD = [sys.executable, sys.argv[1]]; "
    "plan.PREFLIGHT_CMD = [sys.executable, sys.argv[1], 'preflight']; "
    "from trickbench.scripts.ablate import main; sys.exit(main(sys.argv[2:]))"
)


def ablation_file(tmp: Path, sleep: float) -> Path:
    base = tmp / "base.yaml"
    base.write_text(yaml.safe_dump({"fake": {"acc": 0.5, "sleep": sleep}}))
    spec = {"name": "toy", "base": [str(base)], "seeds": [0], "arms": {"baseline": []}}
    (tmp / "ablation.yaml").write_text(yaml.safe_dump(spec))
    return tmp / "ablation.yaml"


def harness(tmp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", HARNESS, str(FAKE), str(tmp / "ablation.yaml"), "--runs-dir", "runs", *extra]


@pytest.mark.slow
def test_a_live_child_of_a_killed_harness_is_left_alone_then_waited_for(tmp_path: Path) -> None:
    ablation_file(tmp_path, sleep=30)  # long enough for two more harness start-ups while the child trains
    run = tmp_path / "runs" / "toy" / "baseline" / "seed0"
    first = subprocess.Popen(harness(tmp_path), cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL)
    deadline = time.time() + 30
    while lock_holder(run) is None:  # the child is training (holds the run's lock)
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.1)
    child_pid = int(lock_holder(run).split()[0])
    first.kill()  # only the harness: its child lives on
    first.wait()
    os.kill(child_pid, 0)  # still alive

    again = subprocess.run(harness(tmp_path), cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True)
    assert again.returncode == 3, again.stdout + again.stderr
    assert f"running: elsewhere (PID {child_pid}" in again.stdout and "LEFT ALONE baseline/seed0" in again.stdout
    assert not (run / "attempts").exists() and not list(run.parent.glob("seed0.stale-*"))

    waited = subprocess.run(
        harness(tmp_path, "--wait"), cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True
    )
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "waiting for it" in waited.stdout and "1/1 runs completed or already finished" in waited.stdout
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert len(json.loads((run / "calls.json").read_text())) == 1  # trained once, by the first harness's child
    assert not (run / "attempts").exists()
    rows = write_report(tmp_path / "runs" / "toy", tmp_path / "report")
    assert [(r["arm"], r["n"]) for r in rows] == [("baseline", 1)]


def test_the_run_dir_spelling_does_not_change_a_runs_identity(tmp_path: Path, monkeypatch) -> None:
    """The same sweep with --runs-dir spelt relative, absolute and through a symlink (as `ablate`, `submit.sh` and
    a SLURM task spell it) finds its finished runs: none is stale, nothing is retrained."""
    monkeypatch.setattr(ablation, "TRAIN_CMD", [sys.executable, str(FAKE)])
    monkeypatch.setattr(ablation, "PREFLIGHT_CMD", [sys.executable, str(FAKE), "preflight"])
    monkeypatch.chdir(tmp_path)
    ablation_file(tmp_path, sleep=0)
    assert ablate.main([str(tmp_path / "ablation.yaml"), "--runs-dir", "runs"]) == 0
    (tmp_path / "link").symlink_to(tmp_path)
    for runs_dir in (str(tmp_path / "runs"), str(tmp_path / "link" / "runs"), "./runs"):
        plan = ablation.load_plan(tmp_path / "ablation.yaml", runs_dir)
        assert [ablate.run_state(job, plan)[0] for job in plan.jobs] == ["finished"], runs_dir
        assert ablate.main([str(tmp_path / "ablation.yaml"), "--runs-dir", runs_dir]) == 0
    assert len(json.loads((tmp_path / "runs" / "toy" / "baseline" / "seed0" / "calls.json").read_text())) == 1
