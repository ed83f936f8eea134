"""Stochastic depth (Huang et al., 2016) as per-sample drop-path.

`drop_path(x, p, training)` zeroes whole samples of a residual branch with probability p and
scales the survivors by 1/(1-p), so the expected output equals the input; identity at eval.
"""

from __future__ import annotations

import torch
from torch import nn

from trickbench.checks import check_range


def drop_path(x: torch.Tensor, p: float | torch.Tensor, training: bool) -> torch.Tensor:
    if not training:
        return x
    keep = 1.0 - p
    if not isinstance(p, torch.Tensor) and p <= 0.0:
        return x
    mask_shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    mask = torch.empty(mask_shape, device=x.device, dtype=x.dtype).bernoulli_(keep)
    # keep > 0 always in practice; clamp so p=1 gives zeros instead of NaN.
    return x * mask / torch.clamp(torch.as_tensor(keep, device=x.device, dtype=x.dtype), min=1e-6)


def _sync_active(module: DropPath, _incompatible_keys: object) -> None:
    module.active = bool(module.p > 0)  # a loaded checkpoint's rate decides, not the constructor's


class DropPath(nn.Module):
    """Drop-path with its rate in a buffer, so a scheduler can change it without recompiles.

    `depth_scale` in [0, 1] is this block's relative depth: the net sets the rate to
    `base_rate * depth_scale` (linear decay rule), and `StochasticDepthScheduler` rescales
    `base_rate` over training through `set_base_rate`.
    """

    def __init__(self, base_rate: float = 0.0, depth_scale: float = 1.0) -> None:
        super().__init__()
        check_range("DropPath", "base_rate", base_rate, 0.0, 1.0, high_open=True)
        check_range("DropPath", "depth_scale", depth_scale)
        self.depth_scale = depth_scale
        self.register_buffer("p", torch.tensor(base_rate * depth_scale), persistent=True)
        # Python mirror of `p > 0`: at p = 0 forward is the identity with no mask drawn (no kernels, and
        # the global RNG stream does not move). Under torch.compile only a 0 <-> >0 switch recompiles.
        self.active = base_rate * depth_scale > 0
        self.register_load_state_dict_post_hook(_sync_active)

    def set_base_rate(self, base_rate: float) -> None:
        self.p.fill_(base_rate * self.depth_scale)
        self.active = base_rate * self.depth_scale > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training) if self.active else x

    def extra_repr(self) -> str:
        return f"p={float(self.p):.4f}, depth_scale={self.depth_scale:.3f}"
