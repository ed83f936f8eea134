"""A signal that reaches the ranks of a DDP job at different points is acted on by all of them after one batch.

Lightning acts inside the signal handler: it checkpoints there at SLURM's time-limit warning, and broadcasts
a flag there at SIGTERM. A rank signalled first then enters those collectives while another is in the step's
gradient all-reduce, and the job hangs (a two-node test job did both: tests/test_slurm_multinode.py).
`trickbench.run.agreed_signals` notes the signal and acts at the next batch end all ranks reach. Here two ranks
run as `srun` starts them (SLURM's variables, no SLURM; a fake `scontrol` on PATH), or as Lightning starts them
on one machine, and one rank alone is signalled, the far end of signals that arrive at different times.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import subprocess_env

from trickbench.run.agreed_signals import next_hpc_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STEPS = 2 * 512 // (2 * 16)  # 2 epochs of 512 samples, global batch 2 x 16


def test_the_next_requeue_checkpoint_follows_the_highest_number(tmp_path):
    assert next_hpc_checkpoint(tmp_path) == tmp_path / "hpc_ckpt_1.ckpt"
    for name in ("hpc_ckpt_2.ckpt", "hpc_ckpt_10.ckpt", "hpc_ckpt_x.ckpt", "hpc_ckpt_11.ckpt.tmp"):
        (tmp_path / name).touch()
    assert next_hpc_checkpoint(tmp_path) == tmp_path / "hpc_ckpt_11.ckpt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit_command(run_dir: Path, rank: int, name: str) -> list[str]:
    """A two-process DDP fit of the synthetic MLP in which rank `rank` alone gets signal `name` before step 5."""
    cmd = [sys.executable, "-m", "trickbench", "fit", "--config", "configs/synthetic_mlp.yaml"]
    cmd += ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--trainer.max_epochs=2"]
    cmd += ["--data.init_args.n_train=512", "--data.init_args.n_val=64", "--data.init_args.batch_size=16"]
    cmd += ["--trainer.logger=false", "--trainer.enable_model_summary=false"]
    cmd += ["--trainer.callbacks+=killswitch.SignalRankAtStep", "--trainer.callbacks.step=5"]
    cmd += [f"--trainer.callbacks.rank={rank}", f"--trainer.callbacks.name={name}"]
    return cmd + ["--seed_everything=0", "--run_dir", str(run_dir)]


def fake_scontrol(tmp_path: Path, run_dir: Path) -> tuple[Path, Path, Path]:
    """A `scontrol` that records its arguments and keeps the requeue checkpoint (which the completed fit deletes,
    superseded by last.ckpt); returns its folder, its record and where it keeps the checkpoint."""
    bin_dir, saved, calls = tmp_path / "bin", tmp_path / "saved", tmp_path / "scontrol.calls"
    bin_dir.mkdir(), saved.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncp {run_dir}/hpc_ckpt_*.ckpt {saved}/\n')
    (bin_dir / "scontrol").chmod(0o755)
    return bin_dir, calls, saved


def wait(procs: list[subprocess.Popen], timeout: int = 150) -> list[str]:
    """The processes' stderr once they have all ended; a test failure, with their output, if they hang."""
    try:
        return [p.communicate(timeout=timeout)[1] for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        errs = [p.communicate()[1] for p in procs]
        pytest.fail("the ranks hung after the signal:\n" + "\n".join(e[-2000:] for e in errs))


def srun_ranks(tmp_path: Path, run_dir: Path, rank: int, name: str) -> tuple[list[subprocess.Popen], Path, Path]:
    """The two ranks, started as `srun` starts a one-node, two-task job step."""
    bin_dir, calls, saved = fake_scontrol(tmp_path, run_dir)
    slurm = {"SLURM_JOB_ID": "4343", "SLURM_JOB_NAME": "tb-signal", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2"}
    slurm |= {"SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost", "MASTER_ADDR": "127.0.0.1"}
    slurm |= {"MASTER_PORT": str(free_port()), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    procs = [
        subprocess.Popen(
            fit_command(run_dir, rank, name),
            cwd=ROOT,
            env=subprocess_env(SLURM_PROCID=str(r), SLURM_LOCALID=str(r), **slurm),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    return procs, calls, saved


@pytest.mark.slow
def test_a_warning_to_one_ddp_rank_checkpoints_and_requeues_on_every_rank_at_one_step(tmp_path):
    """SLURM's warning reaches rank 1 alone, before step 5: both ranks save the requeue checkpoint after that
    batch, rank 0 requeues the job once, and the fit (the fake `scontrol` requeues nothing) completes. With
    Lightning's handler the ranks hung until the timeout."""
    run_dir = tmp_path / "run"
    procs, calls, saved = srun_ranks(tmp_path, run_dir, rank=1, name="USR1")
    errs = wait(procs)
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-3000:] for e in errs)
    assert calls.read_text().split() == ["requeue", "4343"]  # once, by rank 0
    assert "every rank saves hpc_ckpt_1.ckpt at step 6; job 4343 is requeued" in errs[0]
    assert torch.load(saved / "hpc_ckpt_1.ckpt", weights_only=False)["global_step"] == 6
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["global_step"] == STEPS, record


def assert_stopped_after_step_6(run_dir: Path, procs: list[subprocess.Popen], errs: list[str]) -> None:
    """The ranks left after the batch of step 5 with SIGTERM's exit code, rank 0 recorded the stop, and last.ckpt
    holds step 6 for the resume."""
    assert {p.returncode for p in procs} == {143}, "\n".join(e[-3000:] for e in errs)
    assert "SIGTERM: every rank stops after step 6" in errs[0]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM", record
    assert record["global_step"] == 6, record
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 6


@pytest.mark.slow
def test_a_sigterm_to_one_srun_rank_stops_every_rank_after_the_same_batch(tmp_path):
    """SIGTERM (a requeue, `scancel`, the time limit) reaches rank 1 alone, before step 5. Lightning's handler
    broadcast from inside the handler there, a collective rank 0 never matched: the ranks hung, and SLURM killed
    them unrecorded (one in three requeued segments of the two-node test job)."""
    run_dir = tmp_path / "run"
    procs, calls, _ = srun_ranks(tmp_path, run_dir, rank=1, name="TERM")
    errs = wait(procs)
    assert_stopped_after_step_6(run_dir, procs, errs)
    assert not calls.exists()  # a stop, not a requeue


@pytest.mark.slow
def test_a_sigterm_to_the_launching_rank_reaches_the_rank_it_started_and_both_stop_after_one_batch(tmp_path):
    """`kill <pid>` of a one-machine DDP fit: rank 0, which Lightning's launcher made start rank 1, forwards the
    signal to it (as Lightning's own handler did) and both leave after the same batch."""
    run_dir = tmp_path / "run"
    cmd = fit_command(run_dir, rank=0, name="TERM")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), **pipes)
    errs = wait([proc])  # rank 1 shares rank 0's output pipes: this also waits for rank 1 to end
    assert_stopped_after_step_6(run_dir, [proc], errs)
    assert "[rank: 1]" in errs[0]  # rank 1 ran
