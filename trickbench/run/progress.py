"""Progress without a terminal: one plain line per epoch (and every few minutes inside long epochs).

A progress bar written to a file (SLURM log, `nohup`, the ablation harness) shows only its last frame,
so without a terminal `trickbench` uses this instead:

    epoch 3/10  step 1200/4000  train/loss 0.812  val/acc 0.8123  val/loss 0.551  412 img/s  elapsed 0:04:51  ETA
    0:11:19

A long validation or test pass (a CPU testing 10,000 images) prints a line at the same cadence:

    test  batch 6/10  elapsed 0:01:02  ETA 0:00:41
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
        self._eval_t0 = self._eval_last = 0.0

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

    # --- validation / test passes: a line every `every_minutes` inside a long pass --------------------------
    def _eval_start(self) -> None:
        self._eval_t0 = self._eval_last = time.perf_counter()

    def _eval_batch(self, trainer: Trainer, stage: str, batch_idx: int, dataloader_idx: int = 0) -> None:
        now = time.perf_counter()
        if now - self._eval_last < 60 * self.every_minutes:
            return
        self._eval_last = now
        if not trainer.is_global_zero:
            return
        batches = trainer.num_val_batches if stage == "val" else trainer.num_test_batches
        total = batches[dataloader_idx] if dataloader_idx < len(batches) else math.inf
        done, elapsed = batch_idx + 1, now - self._eval_t0
        left = (total - done) * elapsed / done if math.isfinite(total) else math.inf
        total_text = int(total) if math.isfinite(total) else "?"
        print(
            f"{stage}  batch {done}/{total_text}  elapsed {_clock(elapsed)}  ETA {_clock(left)}",
            file=sys.stdout,
            flush=True,
        )

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start()

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start()

    # Lightning passes (trainer, module, outputs, batch, batch_idx[, dataloader_idx]).
    def on_validation_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            self._eval_batch(trainer, "val", *args[3:])

    def on_test_batch_end(self, trainer: Trainer, *args: Any) -> None:
        self._eval_batch(trainer, "test", *args[3:])

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


class SizedForGPUNote(Callback):
    """Added by the CLI when a recipe that says `sized_for: gpu` starts on a CPU: says so at once, and after the
    first `measure_steps` optimizer steps how long the whole run will take here, with the CPU preset to use instead.

    Args:
        recipe: the name shown in the note (the first --config)
        measure_steps: optimizer steps timed for the estimate
    """

    def __init__(self, recipe: str = "this recipe", measure_steps: int = 5) -> None:
        self.recipe, self.measure_steps = recipe, max(1, measure_steps)
        self._t0, self._done = 0.0, False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0, self._step0 = time.perf_counter(), trainer.global_step
        if trainer.is_global_zero:
            print(
                f"note: {self.recipe} is sized for a GPU (sized_for: gpu) and is running on the CPU; the expected "
                f"time follows after {self.measure_steps} steps. For a CPU run use --config cifar10_cpu_fast.",
                file=sys.stderr,
                flush=True,
            )

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        done = trainer.global_step - self._step0
        total = trainer.estimated_stepping_batches
        if self._done or (done < self.measure_steps and trainer.global_step < total):
            return
        self._done = True
        per_step = (time.perf_counter() - self._t0) / max(done, 1)
        if trainer.is_global_zero and math.isfinite(total):
            print(
                f"note: {self.recipe} on this CPU: {per_step:.2f} s per step, so its {int(total)} steps take about "
                f"{_clock(per_step * total)} (h:mm:ss). It is meant for a GPU; on a CPU use --config cifar10_cpu_fast.",
                file=sys.stderr,
                flush=True,
            )
