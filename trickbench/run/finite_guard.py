"""Stop training at the first NaN/inf loss, before it reaches a checkpoint.

A non-finite loss turns every weight into NaN at the optimizer step, and the next checkpoint then overwrites the
last good one with garbage. By default the guard keeps the first non-finite step on the device (no host sync in
the training step, so a GPU step can run ahead) and looks at it at each logging step, before every checkpoint is
written and at the end of each epoch: the run stops naming that step, and no checkpoint taken after it exists.
`check_every_n_steps: 1` checks in `on_before_backward` instead, before the optimizer step, at the price of one
host sync per step.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from trickbench import compat

NONE_YET = 2**62  # "no non-finite step seen": larger than any step number


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(Callback):
    """Raise `NonFiniteLossError` naming the step whose training loss was NaN/inf.

    Under DDP all ranks agree at each check (one collective), so every rank stops together instead of one rank
    dying and the others hanging in the next all-reduce.

    Args:
        check_every_n_steps: null (default): no host sync in the step; the first bad step is kept on the device
            and checked at logging steps, before each checkpoint and at epoch ends. N: check every N steps before
            the optimizer step (one host sync each; 1 keeps the weights of a bad step untouched)
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None and check_every_n_steps < 1:
            raise ValueError(f"FiniteLossGuard check_every_n_steps must be >= 1 or null, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self._first_bad: torch.Tensor | None = None  # the first non-finite step so far (NONE_YET: none), on device

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor) -> None:
        loss = loss.detach()
        if self.check_every_n_steps is None:  # remember on the device; looked at in _check
            step = torch.where(torch.isfinite(loss).all(), NONE_YET, trainer.global_step)
            self._first_bad = step if self._first_bad is None else torch.minimum(self._first_bad, step)
        elif trainer.global_step % self.check_every_n_steps == 0:
            finite = bool(torch.isfinite(loss).all())
            if not trainer.strategy.reduce_boolean_decision(finite, all=True):
                self._raise(trainer, trainer.global_step, "Stopped before the optimizer step, so no weight")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        every = trainer.log_every_n_steps
        if every > 0 and trainer.global_step % every == 0:  # a logging step: it syncs to write the values anyway
            self._check(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        self._check(trainer)  # raising here aborts the save: no checkpoint holds the weights after a bad step

    def _check(self, trainer: Trainer) -> None:
        if self._first_bad is None:
            return
        first = int(self._first_bad)  # the one host sync, at a check point
        if trainer.strategy.reduce_boolean_decision(first == NONE_YET, all=True):
            return
        self._raise(trainer, first, "Found before any checkpoint was written after it, so no checkpoint")

    def _raise(self, trainer: Trainer, step: int, stopped: str) -> None:
        cb = trainer.checkpoint_callback
        ckpt = (getattr(cb, "last_model_path", "") or getattr(cb, "best_model_path", "")) or "none saved yet"
        raise NonFiniteLossError(
            f"Training loss is non-finite (rank {trainer.global_rank}) at global step {step} (epoch "
            f"{trainer.current_epoch}, batch {compat.epoch_batches_taken(trainer)} when found). {stopped} "
            f"was touched; last checkpoint: {ckpt}. Lower the learning rate, add warmup or gradient clipping "
            "(trainer.gradient_clip_val), or check the data for NaN/inf; resume with --ckpt_path last after "
            "fixing the cause."
        )
