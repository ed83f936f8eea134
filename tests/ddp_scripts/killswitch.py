"""Callbacks the reliability tests inject into CLI subprocesses (on PYTHONPATH via tests/ddp_scripts).

`KillAtStep` simulates a crash (power cut, pre-emption): `os._exit` skips every handler, so
nothing gets a chance to save or flush. `LossTrace` records the global mean loss per step on
rank 0, so a 2-process run can be compared with a 1-process run step by step.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal

import torch
from lightning.pytorch import Callback


class KillAtStep(Callback):
    """Hard-exit when `global_step == step`, before that step's batch runs."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os._exit(17)


class SigtermAtStep(Callback):
    """Send this process SIGTERM (what `kill` and a SLURM time limit do) when `global_step == step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


class KillAtTest(Callback):
    """Hard-exit when the test after fit starts: fit's record is written, the test's never is."""

    def on_test_start(self, trainer, pl_module) -> None:
        os._exit(17)


class LossTrace(Callback):
    """Append `{step, loss}` (loss averaged over ranks) to `path` as JSON lines, rank 0 only."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = trainer.strategy.reduce(outputs["loss"].detach().clone(), reduce_op="mean")
        if trainer.is_global_zero:
            with open(self.path, "a") as fh:
                fh.write(json.dumps({"step": trainer.global_step, "loss": float(loss)}) + "\n")


class RecordBatches(Callback):
    """Per rank, per training batch: what went in and what came out, as JSON lines in `<path>.rank<r>`.

    x_sum is the augmented batch (after `on_after_batch_transfer`); y the labels; lr and drop
    the learning rate and drop-path rates in force; loss the rank's own loss; rng a hash of
    the global torch RNG state after the step (which stream this rank drew from).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        drops = [round(float(m.p), 6) for m in pl_module.modules() if type(m).__name__ == "DropPath"]
        row = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "batch_idx": batch_idx,
            "x_sum": float(batch[0].double().sum()),
            "y": batch[1].tolist(),
            "loss": float(outputs["loss"]),
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "drop": drops,
            "rng": hashlib.md5(torch.get_rng_state().numpy().tobytes()).hexdigest()[:12],  # global stream
        }
        with open(f"{self.path}.rank{trainer.global_rank}", "a") as fh:
            fh.write(json.dumps(row) + "\n")


class SlowSteps(Callback):
    """Sleep `seconds` after every training batch: a tiny run that takes a known wall time (SLURM time limits)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import time

        time.sleep(self.seconds)


class SignalRankAtStep(Callback):
    """Send this process the signal `name` (USR1 is SLURM's time-limit warning; TERM is what `kill`, `scancel` and a
    requeue send) on rank `rank` only, before the batch of `global_step == step`: one rank signalled while the
    others are already in the step's collectives."""

    def __init__(self, step: int, rank: int, name: str) -> None:
        self.step, self.rank, self.signum = step, rank, signal.Signals[f"SIG{name}"]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
