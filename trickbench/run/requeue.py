"""SLURM's time-limit warning acted on at a batch every rank has reached: checkpoint, then `scontrol requeue`.

Lightning's own requeue (`SLURMEnvironment(auto_requeue=True)`) saves its checkpoint and calls `scontrol requeue`
inside the signal handler. A Python signal handler runs between any two bytecodes of the main thread, so under DDP
each rank enters that checkpoint's collectives wherever it happens to be: a rank warned first waits in the
checkpoint's barrier while another waits in the step's gradient all-reduce, and the job hangs until SLURM kills it
at the limit, with no requeue (a two-node job in tests/test_slurm_multinode.py did this; Lightning issue #21406).

Here the handler only notes the warning. At the end of every batch the ranks agree whether any of them was warned
(one all-reduce of one number; Lightning already broadcasts its SIGTERM flag at every step the same way), and then
all of them save `hpc_ckpt_<n>.ckpt` together and rank 0 asks SLURM to requeue the job. The SIGTERM the requeue
brings ends the fit as before (`last.ckpt`, record `interrupted`), and the requeued job resumes.

The handler is installed in `setup`, before the Trainer registers its own: Lightning adds its requeue handler only
where no handler is installed, so it leaves this one in place. `on_train_start` fails loudly if that changes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


def slurm_requeue_environment(trainer: Trainer) -> SLURMEnvironment | None:
    """The Trainer's SLURM environment where it auto-requeues (Lightning's own test before it installs its
    handler), else None. Read from a private attribute, checked: the strategy has no cluster environment in a
    single-process run."""
    connector = getattr(trainer, "_accelerator_connector", None)
    if connector is None or not hasattr(connector, "cluster_environment"):
        raise RuntimeError(
            "this Lightning version's Trainer has no `_accelerator_connector.cluster_environment`, which "
            "trickbench.run.requeue reads to find the SLURM environment: update trickbench/run/requeue.py for it"
        )
    env = connector.cluster_environment
    return env if isinstance(env, SLURMEnvironment) and env.auto_requeue else None


def next_hpc_checkpoint(root: str | Path) -> Path:
    """`hpc_ckpt_<n+1>.ckpt` after the highest n in `root`: the name Lightning's own requeue writes (and that
    `trickbench.trainer_defaults.drop_hpc_checkpoints` deletes once the fit has completed)."""
    found = (re.fullmatch(r"hpc_ckpt_(\d+)\.ckpt", p.name) for p in Path(root).glob("hpc_ckpt_*.ckpt"))
    numbers = [int(m[1]) for m in found if m]
    return Path(root) / f"hpc_ckpt_{max(numbers, default=0) + 1}.ckpt"


def slurm_job_id() -> str:
    """The id `scontrol requeue` takes: `<array job>_<task>` in an array, else the job id."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    return f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]


class AgreedRequeue(Callback):
    """Turn SLURM's time-limit warning into one checkpoint and one requeue, taken by all ranks at the same batch.
    Added by the CLI to every Trainer; does nothing outside SLURM or with `SLURMEnvironment(auto_requeue=False)`."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.warned = False
        self.requeued = False
        self._previous: Any = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        env = slurm_requeue_environment(trainer)
        if env is None or threading.current_thread() is not threading.main_thread():
            return
        self.signum = int(env.requeue_signal)
        self._previous = signal.signal(self.signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.warned = True  # nothing more: this runs between any two bytecodes (module docstring)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.signum is not None and signal.getsignal(self.signum) != self._note:
            raise RuntimeError(
                f"Lightning replaced trickbench's handler of signal {self.signum} (SLURM's time-limit warning) with "
                f"{signal.getsignal(self.signum)!r}; its in-handler checkpoint can hang a DDP job "
                "(trickbench/run/requeue.py): update trickbench/run/requeue.py for this Lightning version"
            )

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._act(trainer)

    on_validation_batch_end = on_test_batch_end = on_train_batch_end

    def _act(self, trainer: Trainer) -> None:
        if self.signum is None or self.requeued:
            return
        if not trainer.strategy.reduce_boolean_decision(self.warned, all=False):  # any rank warned: all act
            return
        self.requeued = True
        job = slurm_job_id()
        path = next_hpc_checkpoint(trainer.default_root_dir)
        step = trainer.global_step
        rank_zero_info(f"SLURM time-limit warning: every rank saves {path.name} at step {step}; job {job} is requeued")
        for logger in trainer.loggers:  # as Lightning's handler: flush the loggers before the job ends
            logger.finalize("finished")
        trainer.save_checkpoint(path)  # a collective: every rank is here, at this batch
        if trainer.is_global_zero:
            done = subprocess.run(["scontrol", "requeue", job], check=False)
            if done.returncode != 0:
                rank_zero_warn(f"`scontrol requeue {job}` failed (exit {done.returncode}): the job will not come back")

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.signum is not None:
            signal.signal(self.signum, self._previous)
        self.signum, self.warned, self.requeued = None, False, False
