"""SLURM's time-limit warning and SIGTERM, acted on by every rank at the same batch.

Lightning acts on both inside the signal handler. For SLURM's warning (`SLURMEnvironment(auto_requeue=True)`) it
saves a checkpoint and calls `scontrol requeue` there; for SIGTERM it broadcasts a flag from rank 0 there. A
Python signal handler runs between any two bytecodes of the main thread, so under DDP each rank enters those
collectives wherever it happens to be: a rank signalled first waits in the handler's barrier or broadcast while
another waits in the step's gradient all-reduce, and the job hangs until it is killed. A two-node test job hung
at a time-limit warning (Lightning issue #21406), and lost one in three of its SIGTERM'd segments the same way
(killed unrecorded after SLURM's KillWait, tests/test_slurm_multinode.py).

Here the handlers only note the signal. At the end of every batch the ranks agree whether any of them was
signalled (one all-reduce of two numbers; Lightning itself broadcasts its SIGTERM flag at every step), and then:
- a warning: all ranks save `hpc_ckpt_<n>.ckpt` together and rank 0 asks SLURM to requeue the job;
- a SIGTERM: all ranks set Lightning's SIGTERM flag, so every rank leaves the loop after this same batch
  (`last.ckpt`, record `interrupted`, exit 143: `trickbench.run.recorder`, `trickbench.lightning_cli`).

The warning handler is installed in `setup`, before the Trainer registers its own: Lightning adds its requeue
handler only where no handler is installed, so it leaves this one in place (`on_train_start` fails loudly if that
changes). The SIGTERM handler replaces Lightning's notifier inside the handler chain Lightning registers, once a
stage starts, and keeps the rest of that chain and the notifier's other duty: where Lightning started the other
ranks itself, rank 0 forwards the first SIGTERM to them.
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

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


def _private(obj: Any, name: str, what: str) -> Any:
    """`obj.<name>`, a private Lightning attribute this module relies on; a clear error where a version lacks it."""
    if not hasattr(obj, name):
        raise RuntimeError(
            f"this Lightning version has no `{type(obj).__name__}.{name}` ({what}), which "
            "trickbench.run.agreed_signals reads: update trickbench/run/agreed_signals.py for it"
        )
    return getattr(obj, name)


def slurm_requeue_environment(trainer: Trainer) -> SLURMEnvironment | None:
    """The Trainer's SLURM environment where it auto-requeues (Lightning's own test before it installs its
    handler), else None."""
    env = _private(_private(trainer, "_accelerator_connector", "the cluster environment"), "cluster_environment", "")
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


class AgreedSignals(Callback):
    """SLURM's time-limit warning (one checkpoint, one requeue) and SIGTERM (one stop), taken by all ranks after
    the same batch. Added by the CLI to every Trainer; does nothing in a single process outside SLURM."""

    def __init__(self) -> None:
        self.signum: int | None = None  # the warning's signal, where this callback requeues
        self.stops = False  # whether this callback owns SIGTERM
        self.warned = self.terminated = self.requeued = False
        self._previous: Any = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        env = slurm_requeue_environment(trainer)
        if env is not None:
            self.signum = int(env.requeue_signal)
            self._previous = signal.signal(self.signum, self._note_warning)
        self.stops = trainer.world_size > 1
        if self.stops:
            _private(_private(trainer, "_signal_connector", "the SIGTERM flag"), "received_sigterm", "")

    def _note_warning(self, signum: int, frame: FrameType | None) -> None:
        self.warned = True  # nothing more: this runs between any two bytecodes (module docstring)

    def _own_sigterm(self, trainer: Trainer) -> None:
        """Swap Lightning's SIGTERM notifier (registered when the Trainer runs, after `setup`) for `note_sigterm`,
        keeping the other handlers of its chain. Lightning restores the handler it found when the run ends."""
        if not self.stops or threading.current_thread() is not threading.main_thread():
            return
        chain = signal.getsignal(signal.SIGTERM)
        if getattr(chain, "owner", None) is self:
            return
        notifier = _private(trainer, "_signal_connector", "")._sigterm_notifier_fn
        handlers = list(getattr(chain, "signal_handlers", []))
        if notifier not in handlers:
            raise RuntimeError(
                f"Lightning's SIGTERM handler is {chain!r}, not a chain with its notifier, which broadcasts inside "
                "the signal handler and can hang a DDP job: update trickbench/run/agreed_signals.py for this version"
            )
        others = [h for h in handlers if h != notifier]
        launcher = trainer.strategy.launcher

        def note_sigterm(signum: int, frame: FrameType | None) -> None:
            if not self.terminated and launcher is not None:
                launcher.kill(signum)  # as Lightning's notifier: to the ranks it started, if any
            self.terminated = True  # the ranks agree at the end of the batch (module docstring)
            for handler in others:
                if callable(handler):
                    handler(signum, frame)

        note_sigterm.owner = self  # type: ignore[attr-defined]
        signal.signal(signal.SIGTERM, note_sigterm)

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._own_sigterm(trainer)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.signum is not None and signal.getsignal(self.signum) != self._note_warning:
            raise RuntimeError(
                f"Lightning replaced trickbench's handler of signal {self.signum} (SLURM's time-limit warning) with "
                f"{signal.getsignal(self.signum)!r}; its in-handler checkpoint can hang a DDP job: update "
                "trickbench/run/agreed_signals.py for this Lightning version"
            )
        self._own_sigterm(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._own_sigterm(trainer)

    on_test_start = on_validation_start

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._act(trainer)

    on_validation_batch_end = on_test_batch_end = on_train_batch_end

    def _act(self, trainer: Trainer) -> None:
        if self.signum is None and not self.stops:
            return
        flags = torch.tensor([float(self.warned), float(self.terminated)], device=trainer.strategy.root_device)
        warned, terminated = (bool(v > 0) for v in trainer.strategy.reduce(flags, reduce_op="sum").tolist())
        if warned and not self.requeued:
            self._requeue(trainer)
        if terminated and not trainer.received_sigterm:
            rank_zero_info(f"SIGTERM: every rank stops after step {trainer.global_step}")
            trainer._signal_connector.received_sigterm = True  # checked in `setup`; Lightning's loops stop on it

    def _requeue(self, trainer: Trainer) -> None:
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
        self.signum, self.stops = None, False
        self.warned = self.terminated = self.requeued = False
