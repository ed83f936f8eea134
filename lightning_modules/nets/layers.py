"""Layer factories so every CIFAR net can swap BatchNorm/GroupNorm and plain/standardized convs."""

from __future__ import annotations

from typing import Literal

from torch import nn

from lightning_modules.ops.weight_std import WSConv2d

Norm = Literal["bn", "gn"]


def conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
         bias: bool = False, weight_std: bool = False) -> nn.Conv2d:  # fmt: skip
    cls = WSConv2d if weight_std else nn.Conv2d
    pad = kernel // 2 if padding is None else padding
    return cls(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=bias)


def norm_layer(channels: int, norm: Norm = "bn", groups: int = 32) -> nn.Module:
    """BatchNorm2d, or GroupNorm with min(groups, channels) groups (Wu & He, 2018)."""
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "gn":
        g = min(groups, channels)
        while channels % g:
            g -= 1
        return nn.GroupNorm(g, channels)
    raise ValueError(f"unknown norm '{norm}'; choose 'bn' or 'gn'")
