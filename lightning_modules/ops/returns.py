"""The actor's return maths, pure functions over (T, N) tensors: discounted returns and generalised advantage
estimation. The rollout DataModule calls them on each collected rollout; the Actor's losses consume their output."""

from __future__ import annotations

import torch


def discounted_returns(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float, last_value: torch.Tensor | None = None
) -> torch.Tensor:
    """G_t = r_t + gamma * (1 - done_t) * G_{t+1} over time (dim 0); bootstraps from `last_value` (or 0)."""
    returns = torch.zeros_like(rewards)
    future = torch.zeros_like(rewards[0]) if last_value is None else last_value
    for t in reversed(range(len(rewards))):
        future = rewards[t] + gamma * (1.0 - dones[t]) * future
        returns[t] = future
    return returns


def gae(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016), all (T, N). Returns (advantages, returns).

    lam = 1 gives the Monte-Carlo advantage G_t - V(s_t) (REINFORCE with a baseline); lam = 0 the TD error.
    """
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(len(rewards))):
        keep = 1.0 - dones[t]
        delta = rewards[t] + gamma * keep * next_value - values[t]
        running = delta + gamma * lam * keep * running
        adv[t], next_value = running, values[t]
    return adv, adv + values
