"""Optimizer + LR-scheduler assembly shared by the LightningModules."""

from __future__ import annotations

import inspect
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


def configure(module: Any, net: nn.Module, optimizer: Callable, lr_scheduler: Callable | None,
              interval: str, no_decay_1d: bool) -> Any:  # fmt: skip
    """Build what `LightningModule.configure_optimizers` returns."""
    opt = optimizer(param_groups(net, no_decay_1d))
    if lr_scheduler is None:
        return opt
    trainer = module.trainer
    total = int(trainer.estimated_stepping_batches) if interval == "step" else int(trainer.max_epochs)
    sched = lr_scheduler(opt, **run_length_kwargs(lr_scheduler, total))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}


class CosineAnnealingLR(torch.optim.lr_scheduler.CosineAnnealingLR):
    """torch's CosineAnnealingLR with T_max optional, so YAML can leave it to `configure` (torch's
    own class makes it a required argument, which LightningCLI then demands in every config)."""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int | None = None, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:  # fmt: skip
        if T_max is None:
            raise ValueError("CosineAnnealingLR needs T_max (steps or epochs); Classifier fills it from the Trainer")
        super().__init__(optimizer, T_max, eta_min, last_epoch)
