"""Schedules the stochastic-depth (drop-path) rate over training.

The nets scale each block's rate by its relative depth (`DropPath.depth_scale`, linear decay rule
of Huang et al., 2016); this callback moves the *base* rate over training through the explicit
hook `DropPath.set_base_rate` (a buffer fill: no recompiles under torch.compile):

- constant:    base_rate throughout (the original recipe);
- linear_up:   0 -> base_rate (curriculum: regularise more as the net starts to overfit);
- linear_down: base_rate -> 0 ("early dropout", Liu et al., 2023: help fitting early, then stop).

The ramp spans the first `ramp_fraction` of training and then holds its end value.
"""

from __future__ import annotations

from typing import Literal

from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from trickbench.lightning_modules.ops.drop_path import DropPath
from trickbench.lightning_modules.ops.schedules import Schedule, drop_rate


def drop_path_modules(module: nn.Module) -> list[DropPath]:
    return [m for m in module.modules() if isinstance(m, DropPath)]


class StochasticDepthScheduler(Callback):
    """Sets every DropPath's base rate at the start of each epoch (interval="epoch": progress =
    epoch / (max_epochs - 1), so the last epoch gets the end value) or of each optimizer step
    (interval="step": progress = step / (total_steps - 1)).

    Args:
        base_rate: the drop-path rate the schedule scales (per net: the last block's)
        schedule: "constant", "linear_up" (0 -> base_rate) or "linear_down" (base_rate -> 0) over training
        interval: "epoch" or "step": when the rate is updated
        ramp_fraction: fraction of training the ramp takes (then constant)
    """

    def __init__(
        self,
        base_rate: float = 0.1,
        schedule: Schedule = "constant",
        interval: Literal["epoch", "step"] = "epoch",
        ramp_fraction: float = 1.0,
    ) -> None:
        if not 0.0 <= base_rate < 1.0:
            raise ValueError(f"StochasticDepthScheduler base_rate is a drop probability in [0, 1), got {base_rate}")
        if schedule not in ("constant", "linear_up", "linear_down") or interval not in ("epoch", "step"):
            raise ValueError(
                f"schedule must be constant|linear_up|linear_down and interval epoch|step, got "
                f"{schedule!r}, {interval!r}"
            )
        self.base_rate, self.schedule, self.interval, self.ramp_fraction = base_rate, schedule, interval, ramp_fraction
        self.current_rate = drop_rate(0.0, base_rate, schedule, ramp_fraction)
        self._modules: list[DropPath] = []

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._modules = drop_path_modules(pl_module)
        if not self._modules:
            raise ValueError(
                f"StochasticDepthScheduler: {type(getattr(pl_module, 'net', pl_module)).__name__} has no DropPath "
                "modules, so there is nothing to schedule. Use a residual CIFAR net (ResNet18, PreActResNet18, "
                "ResNet20, AirbenchNet with residual: true) or remove configs/tricks/stochastic_depth.yaml."
            )
        if self.interval == "epoch" and not (trainer.max_epochs or 0) > 0:
            raise ValueError(
                "StochasticDepthScheduler(interval='epoch') needs trainer.max_epochs > 0; with "
                "max_steps training use interval: step"
            )

    def _set(self, progress: float) -> None:
        self.current_rate = drop_rate(progress, self.base_rate, self.schedule, self.ramp_fraction)
        for m in self._modules:
            m.set_base_rate(self.current_rate)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.interval == "epoch":
            self._set(trainer.current_epoch / max(1, trainer.max_epochs - 1))

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object, batch_idx: int) -> None:
        if self.interval == "step":
            self._set(trainer.global_step / max(1, trainer.estimated_stepping_batches - 1))
