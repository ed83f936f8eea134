"""Learning-rate warmup (Goyal et al., 2017) that composes with whatever scheduler the config uses.

The LR of optimizer step s (0-based) is `inner_lr(s) * warmup_factor(s)`, where `inner_lr` is what
the configured scheduler (one-cycle, cosine, step, ...) alone would give, or the optimizer's LR when
there is none. One writer per LR: `WarmupLR` wraps the configured scheduler and is the only thing
that writes `param_group["lr"]`; Lightning keeps stepping it exactly where it stepped the original.
"""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.types import LRSchedulerConfig
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from trickbench import compat
from trickbench.lightning_modules.ops.schedules import Mode, warmup_factor


class WarmupLR:
    """Scheduler wrapper: `step()` advances the warmup by one optimizer step and the inner scheduler
    every `inner_every` calls (1 for a per-step schedule, steps-per-epoch for a per-epoch one).

    Before each inner step the inner scheduler's own last LR is put back into the param groups,
    so recursive torch schedulers (CosineAnnealingLR, StepLR read `group["lr"]`) never see, and
    never compound, the warmup factor. `state_dict` holds both, for checkpoint resume.

    Args:
        optimizer: the optimizer whose LR is warmed up
        inner: the configured scheduler, or None for a constant LR
        warmup_steps: optimizer steps of warmup
        mode: "linear" or "exponential" ramp
        start_factor: LR multiplier at step 0
        inner_every: step the inner scheduler every this many calls (1 per-step; steps per epoch per-epoch)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        inner: Any | None,
        warmup_steps: int,
        mode: Mode = "linear",
        start_factor: float = 0.01,
        inner_every: int = 1,
    ) -> None:
        self.optimizer, self.inner, self.inner_every = optimizer, inner, max(1, int(inner_every))
        self.warmup_steps, self.mode, self.start_factor = warmup_steps, mode, start_factor
        self.base_lrs = [g["lr"] for g in optimizer.param_groups] if inner is None else None
        self.n = 0  # optimizer steps taken
        self._apply()

    def _inner_lrs(self) -> list[float]:
        return list(self.base_lrs) if self.inner is None else list(self.inner.get_last_lr())

    def _apply(self) -> None:
        f = warmup_factor(self.n, self.warmup_steps, self.mode, self.start_factor)
        for group, lr in zip(self.optimizer.param_groups, self._inner_lrs()):
            group["lr"] = lr * f
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def step(self, *args: Any, **kwargs: Any) -> None:
        self.n += 1
        if self.inner is not None and self.n % self.inner_every == 0:
            for group, lr in zip(self.optimizer.param_groups, self._inner_lrs()):
                group["lr"] = lr  # the inner scheduler's own value, without the warmup factor
            self.inner.step(*args, **kwargs)
        self._apply()

    def get_last_lr(self) -> list[float]:
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        inner = self.inner.state_dict() if self.inner is not None else None
        return {"warmup_n": self.n, "base_lrs": self.base_lrs, "inner": inner}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "warmup_n" not in state:
            raise ValueError(
                "This checkpoint's LR scheduler state was saved without the LRWarmup callback; resume it with the "
                "same callbacks it was trained with (drop configs/tricks/warmup.yaml, or start a fresh run)."
            )
        self.n, self.base_lrs = state["warmup_n"], state["base_lrs"]
        if self.inner is not None:
            self.inner.load_state_dict(state["inner"])
        self._apply()


class LRWarmup(Callback):
    """Warm the LR up over `warmup_steps` optimizer steps, or `warmup_fraction` of all steps
    (when warmup_steps is None), on top of the configured scheduler (or a constant LR).

    mode: "linear" or "exponential" (see `warmup_factor`); start_factor: LR multiplier at step 0.

    Args:
        warmup_steps: optimizer steps of warmup; null uses warmup_fraction
        warmup_fraction: warmup length as a fraction of all steps
        mode: "linear" or "exponential" ramp
        start_factor: LR multiplier at step 0
    """

    def __init__(
        self,
        warmup_steps: int | None = None,
        warmup_fraction: float = 0.05,
        mode: Mode = "linear",
        start_factor: float = 0.01,
    ) -> None:
        if mode not in ("linear", "exponential"):
            raise ValueError(f"LRWarmup mode must be 'linear' or 'exponential', got '{mode}'")
        if not 0 < start_factor <= 1:
            raise ValueError(f"LRWarmup start_factor is the LR multiplier at step 0, in (0, 1]; got {start_factor}")
        if warmup_steps is None and not 0 <= warmup_fraction <= 1:
            raise ValueError(f"LRWarmup warmup_fraction must be in [0, 1], got {warmup_fraction}")
        self.warmup_steps, self.warmup_fraction = warmup_steps, warmup_fraction
        self.mode, self.start_factor = mode, start_factor

    def resolve_steps(self, trainer: Trainer) -> int:
        if self.warmup_steps is not None:
            return int(self.warmup_steps)
        total = trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError("LRWarmup(warmup_fraction) needs a finite run (max_epochs or max_steps); set warmup_steps")
        return max(1, round(self.warmup_fraction * total))

    @staticmethod
    def steps_per_epoch(trainer: Trainer) -> int:
        batches = compat.train_batches(trainer)
        if not math.isfinite(batches):
            raise ValueError("LRWarmup cannot wrap a per-epoch scheduler on an endless train loader; step it per step")
        return max(1, math.ceil(batches / trainer.accumulate_grad_batches))

    # on_fit_start: after configure_optimizers (strategy.setup) and before Lightning restores the
    # scheduler state of a resumed run, so the wrapper's load_state_dict receives that state.
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        n = self.resolve_steps(trainer)
        configs = compat.scheduler_configs(trainer)
        wrapped = {id(c.scheduler.optimizer) for c in configs}
        for cfg in configs:
            if isinstance(cfg.scheduler, WarmupLR):
                continue
            if isinstance(cfg.scheduler, ReduceLROnPlateau) or cfg.reduce_on_plateau:
                raise ValueError("LRWarmup cannot wrap ReduceLROnPlateau (it steps on a metric); use a step schedule.")
            every = cfg.frequency * (self.steps_per_epoch(trainer) if cfg.interval == "epoch" else 1)
            cfg.scheduler = WarmupLR(cfg.scheduler.optimizer, cfg.scheduler, n, self.mode, self.start_factor, every)
            cfg.interval, cfg.frequency = "step", 1  # the wrapper now counts optimizer steps itself
        for opt in trainer.optimizers:
            if id(opt) not in wrapped:  # no scheduler configured: warm up a constant LR
                configs.append(LRSchedulerConfig(WarmupLR(opt, None, n, self.mode, self.start_factor), interval="step"))
