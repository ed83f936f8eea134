"""SLURM's time-limit warning (`--signal=USR1@S`) that arrives while a run is still starting up.

sbatch(1): "the signal may be sent up to 60 seconds earlier than specified". SIGUSR1's default action ends a
process, so before trickbench held it back, a warning that came while `trickbench` was importing torch killed
the run with no record and no requeue (seen in CI: tests/test_slurm.py's 1-minute 'limited' job ended without a
metrics.json). No SLURM needed here: the SLURM variables make Lightning install its requeue handler, and a fake
`scontrol` on PATH records the requeue it asks for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import subprocess_env

from trickbench import signals
from trickbench.run.requeue import next_hpc_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def blocked(pid: int, signum: int) -> bool:
    """Whether `signum` is in the process's blocked mask (Linux /proc: SigBlk is a hex bit set, bit n-1 = signal n)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_hold_keeps_a_usr1_pending_until_release():
    """The mechanism itself, in a child process: a held SIGUSR1 neither kills nor is lost; release delivers it."""
    code = (
        "import os, signal, sys\n"
        "from trickbench import signals\n"
        "signals.hold()\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"  # would end the process here without hold()
        "got = []\n"
        "signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))\n"
        "assert got == [] and signals.held()\n"
        "signals.release()\n"
        "print(got == [signal.SIGUSR1], signals.held())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_an_early_usr1_requeues_once_training_starts(tmp_path):
    """A USR1 sent while the fit is still importing is delivered once the requeue handler exists: the run
    saves its HPC checkpoint, asks `scontrol requeue <job>`, and (the fake scontrol requeues nothing) completes,
    deleting the HPC checkpoint its completed fit superseded."""
    bin_dir, run_dir = tmp_path / "bin", tmp_path / "run"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.calls"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = subprocess_env(
        SLURM_JOB_ID="4242",
        SLURM_NTASKS="1",
        SLURM_JOB_NAME="tb-signal",
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
        SLURM_NODEID="0",
        SLURM_NODELIST="localhost",
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    )
    cmd = [
        sys.executable,
        "-m",
        "trickbench",
        "fit",
        "--config",
        "configs/synthetic_mlp.yaml",
        "--trainer.max_epochs=2",
        "--data.init_args.n_train=256",
        "--trainer.logger=false",
        "--trainer.enable_model_summary=false",
        "--run_dir",
        str(run_dir),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    # Wait until the entry point holds USR1, but no longer than 0.3 s: torch alone takes longer than that to
    # import, so without the hold the signal lands before any handler exists (the bug this test guards).
    while not blocked(proc.pid, signal.SIGUSR1) and time.time() - t0 < 0.3:
        time.sleep(0.005)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-3000:]}"
    assert calls.read_text().split() == ["requeue", "4242"]
    assert "every rank saves hpc_ckpt_1.ckpt at step 0; job 4242 is requeued" in err  # trickbench.run.requeue acted
    assert not (run_dir / "hpc_ckpt_1.ckpt").exists()  # deleted once the fit completed: last.ckpt supersedes it
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed"


def test_an_in_process_fit_leaves_the_signal_mask_alone(tmp_path):
    """A Trainer run in-process (no entry point held USR1) leaves the caller's process not blocking it; a hold the
    caller made itself is released only while a loop runs and is back after the run."""
    from trickbench.lightning_cli import main

    args = [
        "fit",
        "--config",
        "configs/synthetic_mlp.yaml",
        "--trainer.max_epochs=1",
        "--data.init_args.n_train=256",
        "--trainer.logger=false",
        "--trainer.enable_model_summary=false",
    ]
    was = signals.held()  # whatever earlier tests left; restored below
    signals.release()
    try:
        main(args=[*args, "--run_dir", str(tmp_path / "a")])
        assert not signals.held()
        signals.hold()
        main(args=[*args, "--run_dir", str(tmp_path / "b")])
        assert signals.held()  # the caller's hold is back after the run
    finally:
        (signals.hold if was else signals.release)()


def test_the_next_requeue_checkpoint_follows_the_highest_number(tmp_path):
    assert next_hpc_checkpoint(tmp_path) == tmp_path / "hpc_ckpt_1.ckpt"
    for name in ("hpc_ckpt_2.ckpt", "hpc_ckpt_10.ckpt", "hpc_ckpt_x.ckpt", "hpc_ckpt_11.ckpt.tmp"):
        (tmp_path / name).touch()
    assert next_hpc_checkpoint(tmp_path) == tmp_path / "hpc_ckpt_11.ckpt"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_warning_to_one_ddp_rank_checkpoints_and_requeues_on_every_rank_at_one_step(tmp_path):
    """Two DDP ranks as `srun` starts them (SLURM variables, no SLURM); the warning reaches rank 1 alone, before
    batch 5. Lightning's own handler checkpointed inside the signal handler, so rank 1 entered the checkpoint's
    barrier while rank 0 was in the step's collectives: the job hung until SLURM's limit (a two-node test job
    did). Now both ranks save the requeue checkpoint after that batch, rank 0 requeues the job once, and the fit
    (the fake `scontrol` requeues nothing) completes."""
    bin_dir, run_dir, saved = tmp_path / "bin", tmp_path / "run", tmp_path / "saved"
    bin_dir.mkdir(), saved.mkdir()
    calls = tmp_path / "scontrol.calls"
    # the fake scontrol keeps the requeue checkpoint, which the completed fit deletes (superseded by last.ckpt)
    script = f'#!/bin/sh\necho "$@" >> {calls}\ncp {run_dir}/hpc_ckpt_*.ckpt {saved}/\n'
    (bin_dir / "scontrol").write_text(script)
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4343", "SLURM_JOB_NAME": "tb-signal", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2"}
    slurm |= {"SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost", "MASTER_ADDR": "127.0.0.1"}
    slurm |= {"MASTER_PORT": str(free_port()), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "trickbench", "fit", "--config", "configs/synthetic_mlp.yaml"]
    cmd += ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--trainer.max_epochs=2"]
    cmd += ["--data.init_args.n_train=512", "--data.init_args.n_val=64", "--data.init_args.batch_size=16"]
    cmd += ["--trainer.logger=false", "--trainer.enable_model_summary=false"]
    cmd += ["--trainer.callbacks+=killswitch.WarnRankAtStep", "--trainer.callbacks.step=5"]
    cmd += ["--trainer.callbacks.rank=1", "--seed_everything=0", "--run_dir", str(run_dir)]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=subprocess_env(SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), **slurm),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        errs = [p.communicate(timeout=150)[1] for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        errs = [p.communicate()[1] for p in procs]
        pytest.fail("the ranks hung after the warning:\n" + "\n".join(e[-2000:] for e in errs))
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-3000:] for e in errs)
    assert calls.read_text().split() == ["requeue", "4343"]  # once, by rank 0
    assert "every rank saves hpc_ckpt_1.ckpt at step 6; job 4343 is requeued" in errs[0]
    checkpoint = torch.load(saved / "hpc_ckpt_1.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 6  # after batch 5, the batch rank 1 was warned before
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["global_step"] == 2 * 512 // (2 * 16), record
