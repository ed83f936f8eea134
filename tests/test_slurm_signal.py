"""SLURM's time-limit warning (`--signal=USR1@S`) that arrives while a run is still starting up.

sbatch(1): "the signal may be sent up to 60 seconds earlier than specified". SIGUSR1's default action ends a
process, so before trickbench held it back, a warning that came while `trickbench` was importing torch killed
the run with no record and no requeue (seen in CI: tests/test_slurm.py's 1-minute 'limited' job ended without a
metrics.json). No SLURM needed here: the SLURM variables make the run install its requeue handler, and a fake
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

from conftest import subprocess_env

from trickbench import signals

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
    assert "every rank saves hpc_ckpt_1.ckpt at step 0; job 4242 is requeued" in err  # AgreedSignals acted
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
