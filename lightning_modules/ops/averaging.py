"""Weight averaging as functions (the EMA and Lookahead callbacks of trickbench/callbacks/averaging.py apply
them): the decay schedules, the tensors averaged, the in-place update, and the live weights a checkpoint carries."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn


def lookahead_decay(step: int, total_steps: int, decay: float = 0.95, every: int = 5, power: float = 3.0) -> float:
    """airbench94's Lookahead decay at optimizer step `step` of `total_steps`."""
    return decay**every * (min(step, total_steps) / total_steps) ** power


def ema_decay(updates: int, decay: float, warmup: bool) -> float:
    """Decay of the `updates`-th EMA update (0-based); with warmup min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1 + updates) / (10 + updates)) if warmup else decay


def float_state(net: nn.Module, buffers: bool) -> dict[str, torch.Tensor]:
    """The floating-point tensors of `net` (parameters, and buffers when `buffers`) by name."""
    named = itertools.chain(net.named_parameters(), net.named_buffers() if buffers else ())
    return {k: v for k, v in named if v.is_floating_point()}


@torch.no_grad()
def lerp_into(average: dict[str, torch.Tensor], live: dict[str, torch.Tensor], decay: float) -> None:
    """average <- decay * average + (1 - decay) * live, for every shared key."""
    for k, a in average.items():
        a.lerp_(live[k].detach().to(a.dtype), 1.0 - decay)


def live_weights(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The live (un-averaged) net weights a checkpoint carries besides its final ones: EMA's `live`, or
    Lookahead's `final_live` (the last step's weights before they were replaced by the average); None
    when the run had no weight average (then its weights are the live ones)."""
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith("EMA") and state.get("live") is not None:
            return state["live"]
        if key.startswith("Lookahead") and state.get("final_live") is not None:
            return state["final_live"]
    return None
