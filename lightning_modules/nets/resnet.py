"""CIFAR ResNets (3x3 stem, no max-pool): ResNet-18, PreAct ResNet-18, ResNet-20.

Every net takes `norm` ("bn"/"gn"), `weight_std` and `drop_path_rate`; the drop-path rate of
block i of L is `drop_path_rate * (i + 1) / L` (linear decay rule of Huang et al., 2016).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from trickbench.checks import check_range
from trickbench.lightning_modules.nets.layers import Norm, conv, norm_layer
from trickbench.lightning_modules.ops.drop_path import DropPath

Shortcut = Literal["A", "B"]


class PadShortcut(nn.Module):
    """He et al.'s option A: a parameter-free shortcut, stride-`stride` subsampling plus zero channels
    (split evenly before and after), used by their CIFAR ResNet-20/32/44/56/110."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if out_ch < in_ch:
            raise ValueError(f"shortcut A cannot shrink {in_ch} channels to {out_ch}; use shortcut B")
        self.stride, self.extra = stride, out_ch - in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    """conv-norm-relu-conv-norm + shortcut (He et al., 2016): where the shape changes, option "A"
    (subsample + zero channels, no parameters) or "B" (1x1 conv + norm projection)."""

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, drop: DropPath, norm: Norm, ws: bool, shortcut: Shortcut = "B"
    ) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv(in_ch, out_ch, 3, stride, weight_std=ws), norm_layer(out_ch, norm)
        self.conv2, self.bn2 = conv(out_ch, out_ch, 3, 1, weight_std=ws), norm_layer(out_ch, norm)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            if shortcut == "A":
                self.shortcut = PadShortcut(in_ch, out_ch, stride)
            elif shortcut == "B":
                self.shortcut = nn.Sequential(conv(in_ch, out_ch, 1, stride, weight_std=ws), norm_layer(out_ch, norm))
            else:
                raise ValueError(f"unknown shortcut {shortcut!r}; choose 'A' (parameter-free) or 'B' (projection)")
        self.drop_path = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(self.shortcut(x) + self.drop_path(out))


class PreActBlock(nn.Module):
    """norm-relu-conv-norm-relu-conv + identity (He et al., 2016b)."""

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, drop: DropPath, norm: Norm, ws: bool, shortcut: Shortcut = "B"
    ) -> None:
        super().__init__()
        if shortcut != "B":
            raise ValueError("PreActResNet18 uses projection shortcuts only (shortcut: B)")
        self.bn1, self.conv1 = norm_layer(in_ch, norm), conv(in_ch, out_ch, 3, stride, weight_std=ws)
        self.bn2, self.conv2 = norm_layer(out_ch, norm), conv(out_ch, out_ch, 3, 1, weight_std=ws)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = conv(in_ch, out_ch, 1, stride, weight_std=ws)
        self.drop_path = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return shortcut + self.drop_path(out)


class CifarResNet(nn.Module):
    """Stages of residual blocks on a 3x3 stem; `widths` per stage, `blocks` per stage.

    Args:
        blocks: residual blocks per stage.
        widths: channels per stage.
        preact: pre-activation blocks (He et al., 2016b).
        num_classes: classifier outputs.
        in_channels: image channels.
        norm: "bn" or "gn" (GroupNorm, 16 channels per group).
        weight_std: weight-standardized convs.
        drop_path_rate: stochastic-depth rate of the last block (linear in depth).
        shortcut: "A" (parameter-free, He et al.'s CIFAR nets) or "B" (1x1 projection) where shapes change.
    """

    def __init__(
        self,
        blocks: list[int] = [2, 2, 2, 2],
        widths: list[int] = [64, 128, 256, 512],
        preact: bool = False,
        num_classes: int = 10,
        in_channels: int = 3,
        norm: Norm = "bn",
        weight_std: bool = False,
        drop_path_rate: float = 0.0,
        shortcut: Shortcut = "B",
    ) -> None:
        super().__init__()
        check_range("ResNet", "drop_path_rate", drop_path_rate, 0.0, 1.0, high_open=True)
        block_cls = PreActBlock if preact else BasicBlock
        self.stem = conv(in_channels, widths[0], 3, 1, weight_std=weight_std)
        self.stem_norm = nn.Identity() if preact else norm_layer(widths[0], norm)
        total, i, in_ch = sum(blocks), 0, widths[0]
        stages = []
        for s, (n, w) in enumerate(zip(blocks, widths)):
            layer = []
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                drop = DropPath(drop_path_rate, depth_scale=(i + 1) / total)
                layer.append(block_cls(in_ch, w, stride, drop, norm, weight_std, shortcut))
                in_ch, i = w, i + 1
            stages.append(nn.Sequential(*layer))
        self.stages = nn.Sequential(*stages)
        self.final_norm = norm_layer(in_ch, norm) if preact else nn.Identity()
        self.fc = nn.Linear(in_ch, num_classes)
        self.preact = preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem_norm(self.stem(x))
        if not self.preact:
            out = F.relu(out)
        out = self.stages(out)
        if self.preact:
            out = F.relu(self.final_norm(out))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class ResNet18(CifarResNet):
    """CIFAR ResNet-18: [2, 2, 2, 2] BasicBlocks, widths 64-512, 11.2M parameters.

    Args:
        num_classes: number of classes (output units)
        norm: "bn" (BatchNorm) or "gn" (GroupNorm, 16 channels per group)
        weight_std: weight-standardized convolutions (use with norm gn)
        drop_path_rate: stochastic-depth rate of the last block (linear in depth over the blocks); 0 is off and free
    """

    def __init__(
        self, num_classes: int = 10, norm: Norm = "bn", weight_std: bool = False, drop_path_rate: float = 0.0
    ) -> None:
        super().__init__([2, 2, 2, 2], [64, 128, 256, 512], False, num_classes, 3, norm, weight_std, drop_path_rate)


class PreActResNet18(CifarResNet):
    """PreAct ResNet-18: [2, 2, 2, 2] pre-activation blocks, widths 64-512.

    Args:
        num_classes: number of classes (output units)
        norm: "bn" (BatchNorm) or "gn" (GroupNorm, 16 channels per group)
        weight_std: weight-standardized convolutions (use with norm gn)
        drop_path_rate: stochastic-depth rate of the last block (linear in depth over the blocks); 0 is off and free
    """

    def __init__(
        self, num_classes: int = 10, norm: Norm = "bn", weight_std: bool = False, drop_path_rate: float = 0.0
    ) -> None:
        super().__init__([2, 2, 2, 2], [64, 128, 256, 512], True, num_classes, 3, norm, weight_std, drop_path_rate)


class ResNet20(CifarResNet):
    """ResNet-20 of He et al. (2016) for CIFAR: [3, 3, 3] BasicBlocks, widths 16-64. shortcut "A" (default,
    the paper's: 269,722 parameters) or "B" (1x1 projections: 272,474).

    Args:
        num_classes: number of classes (output units)
        norm: "bn" (BatchNorm) or "gn" (GroupNorm, 16 channels per group)
        weight_std: weight-standardized convolutions (use with norm gn)
        drop_path_rate: stochastic-depth rate of the last block (linear in depth over the blocks); 0 is off and free
        shortcut: "A" (parameter-free, the paper's) or "B" (1x1-conv projections) where the shape changes
    """

    def __init__(
        self,
        num_classes: int = 10,
        norm: Norm = "bn",
        weight_std: bool = False,
        drop_path_rate: float = 0.0,
        shortcut: Shortcut = "A",
    ) -> None:
        super().__init__([3, 3, 3], [16, 32, 64], False, num_classes, 3, norm, weight_std, drop_path_rate, shortcut)
