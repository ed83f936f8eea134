"""Multi-node DDP through the project's own SLURM launcher, on a real two-node cluster that the tests build and
remove themselves (tests/slurm_cluster.py `start_two_nodes`: munge and slurmctld on this machine, each node's slurmd
in its own network namespace on a private bridge; nothing outside this machine is contacted).

(a) a DDP fit across the two nodes (one gloo process per node, started by `srun`) equals a 1-process run with the
same global batch, with one W&B run for the job; (b) the same job hitting its time limit requeues, resumes from
last.ckpt on both nodes and completes with that same result; (c) an ablation array spreads over both nodes.
Skipped with the reason when the cluster cannot start, except under TRICKBENCH_REQUIRE_SLURM=1 (`.ci/run`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import subprocess_env

from trickbench.lightning_cli import main as train_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import slurm_cluster  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
BASE = [str(ROOT / "configs" / "synthetic_mlp.yaml"), str(ROOT / "configs" / "trainer" / "ddp_multinode.yaml")]
TRAIN = ["--trainer.accelerator=cpu", "--trainer.enable_model_summary=false", "--data.init_args.n_train=1280"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = slurm_cluster.started_or_skipped(slurm_cluster.start_two_nodes, tmp_path_factory.mktemp("slurm2"))
    yield c
    c.stop()


def ablate(cluster, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return slurm_cluster.ablate(cluster, *args, cwd=cwd, env=subprocess_env("offline"))


def wait_idle(cluster, name: str, timeout: float = 600) -> None:
    cluster.wait_idle(name, timeout)


def write_ablation(tmp: Path, name: str, overrides: list[str], slurm: dict, base: list[str] = BASE, **extra) -> Path:
    spec = {"name": name, "base": base, "overrides": TRAIN + overrides, "seeds": [0], "arms": {"baseline": []}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**spec, "slurm": slurm, **extra}))
    return path


def single_process(tmp: Path, overrides: list[str]) -> Path:
    """The same training in one process with the global batch (2 x 16)."""
    run = tmp / "single"
    args = ["fit", "--config", BASE[0], *TRAIN, *overrides, "--data.init_args.batch_size=32", "--trainer.logger=false"]
    train_main([*args, "--seed_everything=0", f"--run_dir={run}"])
    return run


def assert_same_training(run: Path, single: Path) -> dict:
    record, want = (json.loads((r / "metrics.json").read_text()) for r in (run, single))
    assert record["status"] == "completed" and record["global_step"] == want["global_step"], record
    for key, value in want["test"].items():
        assert record["test"][key] == pytest.approx(value, rel=1e-5), key
    got, ref = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for r in (run, single))
    for key in ref:
        torch.testing.assert_close(got[key], ref[key], rtol=0, atol=1e-6)  # the DDP test's tolerance
    return record


def test_a_ddp_fit_across_two_nodes_equals_one_process_with_one_wandb_run(cluster, tmp_path, monkeypatch):
    path = write_ablation(tmp_path, "twonode", ["--trainer.max_epochs=2", "--data.init_args.batch_size=16"], {})
    out = ablate(cluster, str(path), "--runs-dir", "runs", "--launcher", "slurm", "--submit", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    sbatch = (tmp_path / "runs" / "twonode" / "slurm" / "ablation.sbatch").read_text()
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n" in sbatch and "--gres" not in sbatch
    wait_idle(cluster, "twonode")
    run = tmp_path / "runs" / "twonode" / "baseline" / "seed0"
    log = (run / "stderr.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log, log[-3000:]
    outs = "".join(p.read_text() for p in (run.parents[1] / "slurm").glob("*.out"))
    assert "on tbnode[1-2]" in outs, outs  # one task per node
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert_same_training(run, single_process(tmp_path, ["--trainer.max_epochs=2"]))
    wandb_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1 and wandb_runs[0].name.endswith((run / "wandb_run_id").read_text().strip())


def test_a_two_node_job_at_its_time_limit_requeues_resumes_and_ends_with_the_same_result(cluster, tmp_path):
    """18 epochs of 40 steps at 0.1 s a step (72 s of training) under a 1-minute limit with USR1 20 s before it:
    every rank checkpoints after the same batch and the job is requeued; the requeued job resumes from last.ckpt on
    both nodes. Its weights and test metrics equal, bit for bit, those of the same two-node job run without a limit
    (and without the sleeps)."""
    overrides = ["--trainer.max_epochs=18", "--data.init_args.batch_size=16", "--trainer.logger=false"]
    slow = ["--trainer.callbacks+=killswitch.SlowSteps", "--trainer.callbacks.seconds=0.1"]
    ref = write_ablation(tmp_path, "uninterrupted", overrides, {})
    limited = write_ablation(tmp_path, "requeue", overrides + slow, {"time": "00:01:00", "signal_seconds": 20})
    for path in (ref, limited):
        out = ablate(cluster, str(path), "--runs-dir", "runs", "--launcher", "slurm", "--submit", cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
    wait_idle(cluster, "uninterrupted")
    wait_idle(cluster, "requeue", timeout=900)
    run, ref_run = (tmp_path / "runs" / name / "baseline" / "seed0" for name in ("requeue", "uninterrupted"))
    record, want = (json.loads((r / "metrics.json").read_text()) for r in (run, ref_run))
    exits = [s["exit"] for s in record["segments"]]
    # Each requeue ends a segment with SIGTERM, recorded as interrupted. None is lost: when Lightning broadcast its
    # SIGTERM flag inside the signal handler, the ranks could hang there until SLURM's KillWait (5 s) ran out and
    # killed them unrecorded (3 of 9 segments in one run); trickbench.run.agreed_signals stops them after one batch.
    assert len(exits) >= 2 and exits[-1] == "completed", exits
    assert all(e == "interrupted: SIGTERM" for e in exits[:-1]), exits
    assert record["global_step"] == want["global_step"] == 18 * 40 and record["test"] == want["test"]
    got, ref_w = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for r in (run, ref_run))
    assert all(torch.equal(got[k], ref_w[k]) for k in ref_w)
    outs = "".join(p.read_text() for p in (run.parents[1] / "slurm").glob("*.out"))
    assert "DUE TO JOB REQUEUE" in outs and outs.count("on tbnode[1-2]") >= 2, outs
    assert " resume: " in (run / "stdout.log").read_text()  # the requeued task resumed from last.ckpt
    assert not list(run.glob("hpc_ckpt_*.ckpt"))  # Lightning's requeue checkpoints, superseded, are gone


def test_an_ablation_array_spreads_over_both_nodes(cluster, tmp_path):
    """Four single-process runs, one CPU each: SLURM places them on both nodes (two at a time)."""
    spec_overrides = ["--trainer.max_epochs=3", "--trainer.logger=false"]
    path = write_ablation(tmp_path, "array", spec_overrides, {}, base=BASE[:1], seeds=[0, 1, 2, 3])
    out = ablate(cluster, str(path), "--runs-dir", "runs", "--launcher", "slurm", "--submit", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    wait_idle(cluster, "array")
    outs = [p.read_text() for p in (tmp_path / "runs" / "array" / "slurm").glob("*.out")]
    nodes = {line.rsplit(" on ", 1)[1].split(";")[0] for text in outs for line in text.splitlines() if "# task" in line}
    assert nodes == {"tbnode1", "tbnode2"}, outs
    status = ablate(cluster, str(path), "--runs-dir", "runs", "--status", cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.count("finished") >= 4, status.stdout
