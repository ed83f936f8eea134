"""Progress without a terminal: one plain line per epoch (and every few minutes inside long epochs).

A progress bar written to a file (SLURM log, `nohup`, the ablation harness) shows only its last frame,
so without a terminal `trickbench` uses this instead:

    epoch 3/10  step 1200/4000  train/loss 0.812  val/acc 0.8123  val/loss 0.551  412 img/s  elapsed 0:04:51  ETA
    0:11:19
"""

from __future__ import annotations

import math
import sys
import time
from datetime import timedelta
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds))) if math.isfinite(seconds) else "?"


class PlainProgress(Callback):
    """Print `epoch, step/total, train loss, val metrics, images/s, elapsed, ETA` to stdout (rank 0).

    every_minutes: also print a line inside an epoch when this many minutes passed since the last line.

    Args:
        every_minutes: also print a line inside an epoch when this many minutes passed since the last
    """

    def __init__(self, every_minutes: float = 5.0) -> None:
        if not every_minutes > 0:
            raise ValueError(f"PlainProgress every_minutes must be > 0, got {every_minutes}")
        self.every_minutes = every_minutes
        self._t0 = self._last = 0.0
        self._images = 0
        self._start_step = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0 = self._last = time.perf_counter()
        self._images, self._start_step = 0, trainer.global_step

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        x = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
        self._images += len(x) if isinstance(x, torch.Tensor) and x.dim() > 0 else 0
        if time.perf_counter() - self._last >= 60 * self.every_minutes:
            self._print(trainer, mid_epoch=True)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer, mid_epoch=False)

    def _print(self, trainer: Trainer, mid_epoch: bool) -> None:
        self._last = now = time.perf_counter()
        if not trainer.is_global_zero:
            return
        elapsed = now - self._t0
        total = trainer.estimated_stepping_batches
        done = trainer.global_step - self._start_step
        left = (total - trainer.global_step) * elapsed / done if done > 0 and math.isfinite(total) else math.inf
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        parts = [
            f"epoch {trainer.current_epoch + (0 if mid_epoch else 1)}/{epochs}",
            f"step {trainer.global_step}/{int(total) if math.isfinite(total) else '?'}",
        ]
        metrics = trainer.callback_metrics
        for key in sorted(metrics):
            if key == "train/loss" or key.startswith("val/"):
                try:
                    parts.append(f"{key} {float(metrics[key]):.4g}")
                except (TypeError, ValueError):
                    pass
        parts += [
            f"{self._images / elapsed:.0f} img/s" if elapsed > 0 else "- img/s",
            f"elapsed {_clock(elapsed)}",
            f"ETA {_clock(left)}",
        ]
        print("  ".join(parts), file=sys.stdout, flush=True)
