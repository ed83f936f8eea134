"""The ablation launcher against a real single-node SLURM cluster (tests/slurm_cluster.py: slurmctld, slurmd,
munge on loopback), with the real trainer on tiny generated MNIST / synthetic data.

Skipped with the reason when the daemons cannot be started here; `.ci/run` sets TRICKBENCH_REQUIRE_SLURM=1,
so in CI a cluster that does not come up is a failure, not a skip.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import make_fake_mnist, subprocess_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import slurm_cluster  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = slurm_cluster.started_or_skipped(slurm_cluster.start, tmp_path_factory.mktemp("slurm"))
    yield c
    c.stop()


def env(cluster) -> dict[str, str]:
    return subprocess_env(SLURM_CONF=cluster.env["SLURM_CONF"])


def ablate(cluster, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return slurm_cluster.ablate(cluster, *args, cwd=cwd, env=subprocess_env())


def wait_idle(cluster, name: str, timeout: float = 420) -> None:
    cluster.wait_idle(name, timeout)


def starts(run: Path) -> list[str]:
    """The harness's header line of every time this run was started (new/resume)."""
    log = run / "stdout.log"
    return [ln for ln in log.read_text().splitlines() if ln.startswith("# 20")] if log.is_file() else []


def write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_ablation_cycle_on_a_real_cluster(cluster, tmp_path):
    """Arrays with a prerequisite, a failing prerequisite and an arm that fails on purpose; CPU-only configs
    with `accelerator: auto`; resubmission from another directory skips finished runs."""
    data = make_fake_mnist(tmp_path / "data")
    broken = write(tmp_path / "broken.yaml", {"model": {"init_args": {"label_smoothing": 1.5}}})
    kd = str(ROOT / "configs" / "tricks" / "kd.yaml")
    spec = {
        "name": "cycle",
        "base": [str(ROOT / "configs" / "mnist_mlp.yaml"), str(ROOT / "configs" / "trainer" / "cpu_smoke.yaml")],
        "overrides": [
            f"--data.init_args.data_dir={data}",
            "--data.init_args.accept_nonoriginal=true",
            "--data.init_args.val_size=32",
            "--trainer.logger=false",
        ],
        "seeds": [0, 1],
        "prerequisites": {"teacher": {}, "bad_teacher": {"fragments": [broken]}},
        "arms": {
            "baseline": [],
            "kd": {"fragments": [kd], "teacher": "teacher"},
            "kd_bad": {"fragments": [kd], "teacher": "bad_teacher"},
            "broken": [broken],
        },
        "slurm": {"time": "00:10:00"},
    }
    path = write(tmp_path / "cycle.yaml", spec)
    runs = tmp_path / "runs"
    root = runs / "cycle"

    # 2. A request no node can satisfy is refused with the numbers, nothing submitted.
    too_big = write(tmp_path / "too_big.yaml", {**spec, "slurm": {"cpus_per_task": 64}})
    out = ablate(cluster, too_big, "--runs-dir", str(runs), "--launcher", "slurm", "--submit")
    assert out.returncode == 2 and "each needs 64 CPUs" in out.stderr and "largest node has" in out.stderr
    assert cluster.run("squeue", "-h").strip() == ""

    out = ablate(cluster, path, "--runs-dir", str(runs), "--launcher", "slurm", "--submit")
    assert out.returncode == 0, out.stderr
    sbatch = (root / "slurm" / "ablation.sbatch").read_text()
    assert "--gres" not in sbatch and "#SBATCH --cpus-per-task=1" in sbatch  # 1. no GPU guessed from `auto`
    assert 'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"' in sbatch
    assert (root / "plan.json").is_file()  # 6.
    wait_idle(cluster, "cycle")

    status = ablate(cluster, path, "--runs-dir", str(runs), "--status")  # 7.
    assert status.returncode == 1, status.stdout
    lines = {ln.split()[0]: ln.split(None, 2)[1:] for ln in status.stdout.splitlines() if "/seed" in ln}
    for label in ("prerequisites/teacher/seed0", "baseline/seed0", "baseline/seed1", "kd/seed0", "kd/seed1"):
        assert lines[label][0] == "finished", (label, status.stdout)
    assert lines["broken/seed0"][0] == "failed" and "label_smoothing" in lines["broken/seed0"][1]
    assert lines["prerequisites/bad_teacher/seed0"][0] == "failed"
    # 3. The failed prerequisite blocks only its own dependants, which are recorded as failed, not run.
    assert lines["kd_bad/seed1"] == ["failed", "not run: prerequisite prerequisites/bad_teacher/seed0 did not complete"]
    assert starts(root / "kd_bad" / "seed1") == []
    for label in ("baseline/seed0", "kd/seed1", "broken/seed0", "prerequisites/teacher/seed0"):
        run = root / label
        assert len(starts(run)) == 1, label  # every (arm, seed) ran once
        assert (run / "stderr.log").is_file()  # 5. logs in the run folder
    assert "fake" not in (root / "kd" / "seed0" / "generated_kd.yaml").read_text()
    outs = {p.name: p.read_text() for p in (root / "slurm").glob("*.out")}
    assert len(outs) == 10 and any("# task 1: prerequisites/bad_teacher/seed0 -> " in t for t in outs.values())

    # 4. submit.sh works from any directory; resubmitting skips finished runs and retries failed ones.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sub = subprocess.run(
        [str(root / "slurm" / "submit.sh")],
        cwd=elsewhere,
        env=env(cluster),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sub.returncode == 0, sub.stderr
    wait_idle(cluster, "cycle")
    assert len(starts(root / "baseline" / "seed0")) == 1 and len(starts(root / "broken" / "seed0")) == 2
    assert len((root / "slurm" / "jobs.tsv").read_text().splitlines()) == 6  # 3 arrays x 2 submissions
    report = subprocess.run(
        [sys.executable, "-m", "trickbench", "report", str(root), "--out", str(tmp_path / "rep")],
        cwd=ROOT,
        env=env(cluster),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "Not counted" in text and "`broken/seed0`" in text and "| kd | 2 |" in text

    # 8. The user's own command, with a relative --runs-dir, sees the runs the SLURM tasks finished (their
    # definitions name the absolute run dirs the sbatch script passes) as finished, not stale.
    dry = ablate(cluster, path, "--runs-dir", "runs", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    states = {ln.split()[1]: ln.split()[2] for ln in dry.stdout.splitlines() if ln[:3].strip().isdigit()}
    assert states["baseline/seed0"] == states["kd/seed1"] == states["prerequisites/teacher/seed0"] == "finished"
    assert "stale" not in states.values(), dry.stdout


def long_run(tmp_path: Path, name: str, slurm: dict, epochs: int) -> str:
    """Synthetic MLP, 20 steps per epoch, 0.1 s per step: `epochs` x 2 s of training."""
    spec = {
        "name": name,
        "base": [str(ROOT / "configs" / "synthetic_mlp.yaml")],
        "overrides": [
            f"--trainer.max_epochs={epochs}",
            "--data.init_args.n_train=2560",
            "--trainer.logger=false",
            "--trainer.enable_model_summary=false",
            "--trainer.callbacks+=killswitch.SlowSteps",
            "--trainer.callbacks.seconds=0.1",
        ],
        "seeds": [0],
        "arms": {"baseline": []},
        "slurm": slurm,
    }
    return write(tmp_path / f"{name}.yaml", spec)


def test_scancel_then_resubmit_resumes_and_time_limit_requeues(cluster, tmp_path):
    """8. A task with a 1-minute limit on a run that needs 2 checkpoints at USR1, requeues itself
    (`trickbench.run.agreed_signals`) and resumes until done; a scancel'd run is `interrupted` and a resubmit
    resumes it."""
    runs = tmp_path / "runs"
    limited = long_run(tmp_path, "limited", {"time": "00:01:00", "signal_seconds": 20}, epochs=60)
    cancel = long_run(tmp_path, "cancel", {"time": "00:10:00"}, epochs=12)
    for path in (limited, cancel):
        out = ablate(cluster, path, "--runs-dir", str(runs), "--launcher", "slurm", "--submit")
        assert out.returncode == 0, out.stderr
    run = runs / "cancel" / "baseline" / "seed0"
    t0 = time.time()
    while not (run / "checkpoints" / "last.ckpt").is_file() and time.time() - t0 < 120:
        time.sleep(0.5)
    assert ablate(cluster, cancel, "--runs-dir", str(runs), "--status").stdout.split()[1] == "running"
    cluster.run("scancel", "-n", "tb-cancel")
    wait_idle(cluster, "cancel")
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM"
    status = ablate(cluster, cancel, "--runs-dir", str(runs), "--status")
    assert status.returncode == 1 and "interrupted by SIGTERM" in status.stdout
    assert ablate(cluster, cancel, "--runs-dir", str(runs), "--launcher", "slurm", "--submit").returncode == 0
    wait_idle(cluster, "cancel")
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "completed" and record["global_step"] == 12 * 20
    assert [s["exit"] for s in record["segments"]] == ["interrupted: SIGTERM", "completed"]
    assert " resume: " in starts(run)[1]
    assert ablate(cluster, cancel, "--runs-dir", str(runs), "--status").returncode == 0

    wait_idle(cluster, "limited", timeout=600)
    run = runs / "limited" / "baseline" / "seed0"
    record = json.loads((run / "metrics.json").read_text())
    exits = [s["exit"] for s in record["segments"]]
    assert record["status"] == "completed" and record["global_step"] == 60 * 20, exits
    assert len(exits) >= 3 and exits[-1] == "completed" and set(exits[:-1]) == {"interrupted: SIGTERM"}
    assert record["fit_seconds"] > 120  # it needed two minutes of training: more than one time limit
    outs = "".join(p.read_text() for p in (runs / "limited" / "slurm").glob("*.out"))
    assert "DUE TO JOB REQUEUE" in outs
