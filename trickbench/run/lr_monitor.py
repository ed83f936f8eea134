"""The learning rate of every optimizer parameter group in the logs (CSV and W&B), as the schedule sets it."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import LearningRateMonitor as _LightningLearningRateMonitor


class LearningRateMonitor(_LightningLearningRateMonitor):
    """Lightning's `LearningRateMonitor` (`lr-<Optimizer>` and `lr-<Optimizer>/pg<i>` per group, at the
    scheduler's interval: per logged step for a per-step schedule such as warmup or one-cycle, per epoch for a
    per-epoch one), in trickbench's trainer defaults. The one difference: a Trainer without a logger
    (`trainer.logger: false`) logs nothing instead of stopping with an error, so the default fits every run.

    Args:
        logging_interval: "step" or "epoch"; null logs at each scheduler's own interval (optimizers without a
            scheduler: per logged step)
        log_momentum: also log each group's momentum (or Adam's beta1)
        log_weight_decay: also log each group's weight decay
    """

    def on_train_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        self._active = bool(trainer.loggers)
        if self._active:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if self._active:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if self._active:
            super().on_train_epoch_start(trainer, *args, **kwargs)
