"""Optimizer + LR-scheduler assembly shared by the LightningModules."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trickbench.lightning_modules.ops.param_groups import param_groups
from trickbench.lightning_modules.ops.schedules import triangle

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
    if total == 0 and interval == "step":
        raise ValueError(
            f"the LR schedule {getattr(lr_scheduler, 'func', lr_scheduler)} needs the run's length, but the run has "
            "no optimizer step (Trainer.estimated_stepping_batches is 0): the training set holds fewer images than "
            "one batch (the last partial batch is dropped); lower data.init_args.batch_size or use more data"
        )
    if total is None or not math.isfinite(total) or total <= 0:
        raise ValueError(
            f"the LR schedule {getattr(lr_scheduler, 'func', lr_scheduler)} needs a finite run length, but "
            f"trainer.max_epochs={trainer.max_epochs} and trainer.max_steps={trainer.max_steps}: set a finite "
            "trainer.max_epochs (> 0) or trainer.max_steps"
            + (" (a per-epoch schedule needs max_epochs)" if interval == "epoch" else "")
        )
    return run_length_kwargs(lr_scheduler, int(total))


def batch_size_kwargs(module: Any, factory: Callable) -> dict[str, int]:
    """Fill an optimizer's `batch_size` (DecoupledSGD's units) from the run when YAML leaves it out: the
    examples behind one optimizer step, i.e. DataModule batch x devices x gradient accumulation."""
    target = next((a for a in getattr(factory, "args", ()) if isinstance(a, type)), factory)
    try:
        takes = "batch_size" in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    if not takes or getattr(factory, "keywords", {}).get("batch_size") is not None:
        return {}
    trainer = module.trainer  # only an optimizer that needs batch_size needs a Trainer
    batch = getattr(getattr(trainer, "datamodule", None), "batch_size", None)
    if batch is None:
        raise ValueError(
            f"{getattr(factory, 'func', factory)} needs batch_size: set it in the optimizer's "
            "init_args, or use a DataModule with a batch_size"
        )
    return {"batch_size": int(batch) * trainer.world_size * trainer.accumulate_grad_batches}


def scale_group_lrs(opt: torch.optim.Optimizer) -> None:
    """Apply each group's `lr_scale` (from `param_groups`) to its lr, dividing its weight decay by the same
    factor so the decay per step (lr x wd) is unchanged (airbench94's rule for its BatchNorm biases)."""
    for group in opt.param_groups:
        scale = group.get("lr_scale", 1.0)
        if scale != 1.0 and not group.get("lr_scaled", False):
            group["lr"] *= scale
            group["weight_decay"] = group.get("weight_decay", 0.0) / scale
            group["lr_scaled"] = True


def configure(
    module: Any,
    net: nn.Module,
    optimizer: Callable,
    lr_scheduler: Callable | None,
    interval: str,
    no_decay_1d: bool,
    norm_lr_scale: float = 1.0,
) -> Any:
    """Build what `LightningModule.configure_optimizers` returns."""
    groups = param_groups(net, no_decay_1d, norm_lr_scale)
    opt = optimizer(groups, **batch_size_kwargs(module, optimizer))
    scale_group_lrs(opt)
    if lr_scheduler is None:
        return opt
    kwargs = schedule_length_kwargs(module.trainer, lr_scheduler, interval)
    sched = lr_scheduler(opt, **kwargs)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}


class DecoupledSGD(torch.optim.SGD):
    """SGD (Nesterov by default) in airbench94's decoupled units (Page, 2019; Jordan, 2024), for a
    mean-reduced loss: `lr` is the step per 1024 examples of *summed* loss with the momentum's gain
    1 + 1 / (1 - momentum) divided out, and `weight_decay` the decay per 1024 examples, independent of
    lr. So momentum, batch size, lr and wd can each be changed without re-tuning the others. airbench94:
    lr 11.5, momentum 0.85, weight_decay 0.0153 (= torch lr 1.50 and weight_decay 1.33e-3 at batch 1024).

    Args:
        params: parameters or parameter groups.
        lr: learning rate per 1024 examples (summed loss, momentum-corrected).
        momentum: momentum coefficient.
        weight_decay: weight decay per 1024 examples, decoupled from lr.
        batch_size: examples per optimizer step; Classifier fills it from the DataModule.
        nesterov: Nesterov momentum.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 11.5,
        momentum: float = 0.85,
        weight_decay: float = 0.0153,
        batch_size: int | None = None,
        nesterov: bool = True,
    ) -> None:
        if batch_size is None or batch_size < 1:
            raise ValueError(
                f"DecoupledSGD needs batch_size >= 1 (Classifier fills it from the DataModule), got {batch_size}"
            )
        if not 0 <= momentum < 1 or lr <= 0 or weight_decay < 0:
            raise ValueError(
                f"DecoupledSGD needs lr > 0, 0 <= momentum < 1, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}"
            )
        kilostep = 1024 * (1 + 1 / (1 - momentum))
        torch_lr = lr / kilostep * batch_size  # a mean loss has 1/batch_size of the summed loss's gradient
        decay_per_step = weight_decay * batch_size / kilostep  # torch's lr * weight_decay
        super().__init__(
            params, lr=torch_lr, momentum=momentum, weight_decay=decay_per_step / torch_lr, nesterov=nesterov
        )


class TriangleLR(torch.optim.lr_scheduler.LambdaLR):
    """Triangular one-cycle schedule (airbench94) that scales each group's own lr, unlike OneCycleLR,
    which overwrites every group with `max_lr` (and so loses DecoupledSGD's units and `lr_scale`).

    Args:
        optimizer: the optimizer.
        total_steps: schedule length; Classifier fills it from the Trainer.
        start: multiplier at step 0.
        end: multiplier at the last step.
        peak_fraction: where the multiplier reaches 1, as a fraction of total_steps.
        last_epoch: torch's resume index.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int | None = None,
        start: float = 0.2,
        end: float = 0.07,
        peak_fraction: float = 0.23,
        last_epoch: int = -1,
    ) -> None:
        if total_steps is None or total_steps < 1:
            raise ValueError("TriangleLR needs total_steps >= 1; Classifier fills it from the Trainer")
        if not 0 <= peak_fraction <= 1:
            raise ValueError(f"TriangleLR peak_fraction must be in [0, 1], got {peak_fraction}")
        self.total_steps, self.start, self.end, self.peak_fraction = total_steps, start, end, peak_fraction
        super().__init__(optimizer, self._factor, last_epoch)

    def _factor(self, step: int) -> float:
        return triangle(step, self.total_steps, self.start, self.end, self.peak_fraction)


class CosineAnnealingLR(torch.optim.lr_scheduler.CosineAnnealingLR):
    """torch's CosineAnnealingLR with T_max optional, so YAML can leave it to `configure` (torch's
    own class makes it a required argument, which LightningCLI then demands in every config)."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, T_max: int | None = None, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if T_max is None:
            raise ValueError("CosineAnnealingLR needs T_max (steps or epochs); Classifier fills it from the Trainer")
        super().__init__(optimizer, T_max, eta_min, last_epoch)
