"""Weight standardization (Qiao et al., 2019): each output filter to zero mean, unit variance."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def standardize_weight(w: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(out, in, kh, kw) -> same shape, standardized over (in, kh, kw) per output channel."""
    dims = tuple(range(1, w.dim()))
    mean = w.mean(dim=dims, keepdim=True)
    var = w.var(dim=dims, keepdim=True, unbiased=False)
    return (w - mean) / torch.sqrt(var + eps)


class WSConv2d(nn.Conv2d):
    """Conv2d that convolves with `standardize_weight(self.weight)`; pairs with GroupNorm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, standardize_weight(self.weight), self.bias, self.stride, self.padding, self.dilation, self.groups
        )
