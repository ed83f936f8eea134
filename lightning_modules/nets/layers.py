"""Layer factories so every CIFAR net can swap BatchNorm/GroupNorm and plain/standardized convs."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trickbench.lightning_modules.ops.weight_std import WSConv2d

Norm = Literal["bn", "gn"]
Init = Literal["default", "dirac"]

GN_CHANNELS_PER_GROUP = 16  # Wu & He (2018), Table 3b: 16 channels per group is as good as 32 groups


def conv(
    in_ch: int,
    out_ch: int,
    kernel: int = 3,
    stride: int = 1,
    padding: int | None = None,
    bias: bool = False,
    weight_std: bool = False,
    init: Init = "default",
) -> nn.Conv2d:
    """A conv (weight-standardized with `weight_std`). `init="dirac"`: torch's default init, then the first
    `in_ch` filters set to identities (`nn.init.dirac_`) and the bias to zero, as in airbench94."""
    cls = WSConv2d if weight_std else nn.Conv2d
    pad = kernel // 2 if padding is None else padding
    layer = cls(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=bias)
    if init == "dirac":
        with torch.no_grad():
            if layer.bias is not None:
                layer.bias.zero_()
            nn.init.dirac_(layer.weight[: min(in_ch, out_ch)])
    elif init != "default":
        raise ValueError(f"unknown conv init '{init}'; choose 'default' or 'dirac'")
    return layer


def gn_groups(channels: int, channels_per_group: int = GN_CHANNELS_PER_GROUP) -> int:
    """GroupNorm groups for `channels`: `channels_per_group` channels each (at least one group), so a
    16-channel stage gets one group of 16, never 16 groups of one (which is InstanceNorm)."""
    g = max(1, channels // channels_per_group)
    while channels % g:
        g -= 1
    return g


def norm_layer(
    channels: int, norm: Norm = "bn", eps: float = 1e-5, momentum: float = 0.1, train_weight: bool = True
) -> nn.Module:
    """BatchNorm2d (eps, momentum in torch's convention: new = (1 - m) * old + m * batch), or GroupNorm
    with `gn_groups(channels)` groups. `train_weight=False` freezes the scale at 1 (airbench94)."""
    if norm == "bn":
        layer: nn.Module = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
    elif norm == "gn":
        layer = nn.GroupNorm(gn_groups(channels), channels, eps=eps)
    else:
        raise ValueError(f"unknown norm '{norm}'; choose 'bn' or 'gn'")
    layer.weight.requires_grad_(train_weight)
    return layer
