"""An airbench94-style CIFAR net (Jordan, 2024): 2x2 stem conv, three conv groups of widths
64/256/256 with max-pool, BatchNorm and GELU, a max-pool head and a scaled linear classifier.

Differences from airbench94, on purpose: no data-dependent whitening init of the stem (the
template trains any net with any data path), and with `residual=True` (default) each
group's second conv is a residual branch `x + f(x)` at no extra compute, so stochastic depth
has something to drop. `residual=False` gives the exact airbench94 layer stack.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.nets.layers import Norm, conv, norm_layer
from lightning_modules.ops.checks import check_range
from lightning_modules.ops.drop_path import DropPath


class ConvGroup(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, norm: Norm, ws: bool, residual: bool, drop: DropPath) -> None:
        super().__init__()
        self.conv1, self.pool = conv(in_ch, out_ch, 3, weight_std=ws), nn.MaxPool2d(2)
        self.norm1, self.conv2, self.norm2 = norm_layer(out_ch, norm), conv(out_ch, out_ch, 3, weight_std=ws), norm_layer(out_ch, norm)
        self.act, self.residual, self.drop_path = nn.GELU(), residual, drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        branch = self.act(self.norm2(self.conv2(x)))
        return x + self.drop_path(branch) if self.residual else branch


class AirbenchNet(nn.Module):
    def __init__(
        self,
        widths: list[int] = [64, 256, 256],
        stem_width: int = 24,
        num_classes: int = 10,
        norm: Norm = "bn",
        weight_std: bool = False,
        residual: bool = True,
        drop_path_rate: float = 0.0,
        logit_scale: float = 1 / 9,  # airbench94's output scaling
    ) -> None:
        super().__init__()
        check_range("AirbenchNet", "drop_path_rate", drop_path_rate, 0.0, 1.0, high_open=True)
        self.stem = nn.Sequential(conv(3, stem_width, 2, padding=0, bias=True, weight_std=weight_std), nn.GELU())
        groups, in_ch = [], stem_width
        for i, w in enumerate(widths):
            drop = DropPath(drop_path_rate, depth_scale=(i + 1) / len(widths))
            groups.append(ConvGroup(in_ch, w, norm, weight_std, residual, drop))
            in_ch = w
        self.groups = nn.Sequential(*groups)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(in_ch, num_classes, bias=False))
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.groups(self.stem(x))) * self.logit_scale
