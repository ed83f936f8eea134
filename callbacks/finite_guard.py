"""Stop training at the first NaN/inf loss, before it reaches the weights.

A non-finite loss otherwise turns every weight into NaN at the optimizer step, and the next
periodic checkpoint then overwrites the last good one with garbage. Checking in
`on_before_backward` (before backward and the optimizer step) keeps the weights and every
checkpoint written so far intact, and names the step so the failure can be reproduced.
"""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from trickbench import compat


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(Callback):
    """Raise `NonFiniteLossError` naming the step when the training loss is NaN/inf.

    check_every_n_steps: 1 checks every step (one host sync per step: `bool()` of a device
    tensor); larger values trade how late a NaN is caught for that sync on fast GPUs.
    Under DDP all ranks agree (one collective), so every rank stops together instead of one
    rank dying and the others hanging in the next all-reduce.

    Args:
        check_every_n_steps: check the loss every this many steps (1: every step, one host sync each)
    """

    def __init__(self, check_every_n_steps: int = 1) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"FiniteLossGuard check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor) -> None:
        if trainer.global_step % self.check_every_n_steps:
            return
        finite = bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        cb = trainer.checkpoint_callback
        ckpt = (getattr(cb, "last_model_path", "") or getattr(cb, "best_model_path", "")) or "none saved yet"
        value = float(loss.detach().float().mean())
        raise NonFiniteLossError(
            f"Training loss is non-finite (rank {trainer.global_rank}: {value}) at global step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {compat.epoch_batches_taken(trainer)}). Stopped before "
            f"the optimizer step, so no weight or checkpoint was touched; last checkpoint: {ckpt}. Lower the "
            "learning rate, add warmup or gradient clipping (trainer.gradient_clip_val), or check the data for "
            "NaN/inf; resume with --ckpt_path last after fixing the cause."
        )
