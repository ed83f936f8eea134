"""Schedules as functions of the step: the LR warmup factor (trickbench/callbacks/warmup.py), the stochastic-depth
rate (trickbench/callbacks/stochastic_depth.py) and airbench's triangle LR (trickbench/lightning_modules/optim.py)."""

from __future__ import annotations

from typing import Literal

Mode = Literal["linear", "exponential"]


def warmup_factor(step: int, warmup_steps: int, mode: Mode = "linear", start_factor: float = 0.01) -> float:
    """LR multiplier for optimizer step `step` (0-based): start_factor at step 0, 1 from `warmup_steps` on.

    linear: start + (1 - start) * s / N.  exponential: start ** (1 - s / N), i.e. geometric steps
    from start to 1 (the same ratio every step, so early steps grow the LR gently in log space).
    """
    if step >= warmup_steps:
        return 1.0
    t = step / warmup_steps
    if mode == "linear":
        return start_factor + (1.0 - start_factor) * t
    if mode == "exponential":
        return start_factor ** (1.0 - t)
    raise ValueError(f"unknown warmup mode '{mode}'; choose 'linear' or 'exponential'")


Schedule = Literal["constant", "linear_up", "linear_down"]


def drop_rate(progress: float, base_rate: float, schedule: Schedule = "constant", ramp_fraction: float = 1.0) -> float:
    """Base drop-path rate at `progress` in [0, 1] (fraction of training done)."""
    t = min(1.0, progress / ramp_fraction) if ramp_fraction > 0 else 1.0
    if schedule == "constant":
        return base_rate
    if schedule == "linear_up":
        return base_rate * t
    if schedule == "linear_down":
        return base_rate * (1.0 - t)
    raise ValueError(f"unknown stochastic-depth schedule '{schedule}'; choose constant, linear_up or linear_down")


def triangle(step: int, total_steps: int, start: float = 0.2, end: float = 0.07, peak_fraction: float = 0.23) -> float:
    """airbench94's LR multiplier: linear from `start` at step 0 to 1 at step int(peak_fraction * total),
    then linear to `end` at `total_steps` (held after)."""
    peak = int(peak_fraction * total_steps)
    if step <= peak:
        return start + (1.0 - start) * step / peak if peak > 0 else 1.0
    t = min(1.0, (step - peak) / max(1, total_steps - peak))
    return 1.0 + (end - 1.0) * t
