"""Optimizer + LR-scheduler assembly shared by the LightningModules."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import torch
from torch import nn

from lightning_modules.ops.param_groups import param_groups

RUN_LENGTH_ARGS = ("total_steps", "T_max")


def run_length_kwargs(factory: Callable, total: int) -> dict[str, int]:
    """Fill OneCycleLR.total_steps / CosineAnnealingLR.T_max from the Trainer when YAML leaves them out,
    so a config never repeats max_epochs/max_steps by hand (and cannot get it wrong)."""
    target = next((a for a in getattr(factory, "args", ()) if isinstance(a, type)), factory)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    given = getattr(factory, "keywords", {})
    return {name: total for name in RUN_LENGTH_ARGS if name in params and given.get(name) is None}


def schedule_length_kwargs(trainer: Any, lr_scheduler: Callable, interval: str = "step") -> dict[str, int]:
    """`run_length_kwargs` filled from the Trainer; an endless run (max_epochs=-1, no max_steps) is one error
    saying what to set, instead of an OverflowError from int(inf)."""
    if not run_length_kwargs(lr_scheduler, 0):
        return {}
    total = trainer.estimated_stepping_batches if interval == "step" else trainer.max_epochs
    if total is None or not math.isfinite(total) or total <= 0:
        raise ValueError(
            f"the LR schedule {getattr(lr_scheduler, 'func', lr_scheduler)} needs a finite run length, but "
            f"trainer.max_epochs={trainer.max_epochs} and trainer.max_steps={trainer.max_steps}: set a finite "
            "trainer.max_epochs (> 0) or trainer.max_steps"
            + (" (a per-epoch schedule needs max_epochs)" if interval == "epoch" else "")
        )
    return run_length_kwargs(lr_scheduler, int(total))


def configure(module: Any, net: nn.Module, optimizer: Callable, lr_scheduler: Callable | None,
              interval: str, no_decay_1d: bool) -> Any:  # fmt: skip
    """Build what `LightningModule.configure_optimizers` returns."""
    opt = optimizer(param_groups(net, no_decay_1d))
    if lr_scheduler is None:
        return opt
    kwargs = schedule_length_kwargs(module.trainer, lr_scheduler, interval)
    sched = lr_scheduler(opt, **kwargs)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}


class CosineAnnealingLR(torch.optim.lr_scheduler.CosineAnnealingLR):
    """torch's CosineAnnealingLR with T_max optional, so YAML can leave it to `configure` (torch's
    own class makes it a required argument, which LightningCLI then demands in every config)."""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int | None = None, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:  # fmt: skip
        if T_max is None:
            raise ValueError("CosineAnnealingLR needs T_max (steps or epochs); Classifier fills it from the Trainer")
        super().__init__(optimizer, T_max, eta_min, last_epoch)
