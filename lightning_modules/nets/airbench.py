"""An airbench94-style CIFAR net (Jordan, 2024): 2x2 stem conv, three conv groups of widths
64/256/256 with max-pool, BatchNorm and GELU, a max-pool head and a scaled linear classifier.

`AirbenchNet(residual=False, init="dirac", bn_eps=1e-12, bn_momentum=0.4, train_norm_weight=False,
whiten_stem=True, head_pool="max3")` is airbench94's network: the same layers, created in the same
order (so the same seed gives the same initial weights) and the same outputs for the same weights
(tests/test_airbench_recipe.py checks both against the `airbench` package). With `whiten_stem` the
stem's weight is frozen and set from the training data by `trickbench.callbacks.PatchWhitening`.

The default, `residual=True`, makes each group's second conv a residual branch `x + f(x)` at no
extra compute, so stochastic depth has something to drop; `residual=False` has no DropPath at all.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trickbench.checks import check_range
from trickbench.lightning_modules.nets.layers import Init, Norm, conv, norm_layer
from trickbench.lightning_modules.ops.drop_path import DropPath

HeadPool = Literal["global_max", "max3"]


class ConvGroup(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, norm: Norm, ws: bool, init: Init, drop: DropPath | None, norm_kwargs: dict
    ) -> None:
        super().__init__()
        self.conv1, self.pool = conv(in_ch, out_ch, 3, weight_std=ws, init=init), nn.MaxPool2d(2)
        self.norm1 = norm_layer(out_ch, norm, **norm_kwargs)
        self.conv2 = conv(out_ch, out_ch, 3, weight_std=ws, init=init)
        self.norm2 = norm_layer(out_ch, norm, **norm_kwargs)
        self.act = nn.GELU()
        if drop is not None:  # residual group: x + drop_path(f(x))
            self.drop_path = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        branch = self.act(self.norm2(self.conv2(x)))
        drop = getattr(self, "drop_path", None)
        return branch if drop is None else x + drop(branch)


class AirbenchNet(nn.Module):
    """airbench94's network (Jordan 2024) built from options: a 2x2 stem, three conv groups, a pooled linear head.

    Args:
        widths: channels of the three conv groups.
        stem_width: output channels of the 2x2 stem conv (airbench: 2 * 3 * 2 * 2 = 24, for whitening).
        num_classes: classifier outputs.
        norm: "bn" (BatchNorm) or "gn" (GroupNorm, 16 channels per group).
        weight_std: weight-standardized convs (use with norm "gn"); not the stem when it is whitened.
        residual: make each group's second conv a residual branch (needed by stochastic depth).
        drop_path_rate: stochastic-depth rate of the last group (linear in depth); needs residual.
        logit_scale: output multiplier (airbench94: 1/9).
        init: "dirac" sets each conv's first filters to identities (airbench94), "default" is torch's.
        bn_eps: BatchNorm epsilon (airbench94: 1e-12).
        bn_momentum: BatchNorm running-stat momentum in torch's convention (airbench94's 0.6 is 0.4 here).
        train_norm_weight: train the norm layers' scale; False freezes it at 1 (airbench94).
        whiten_stem: freeze the stem weight, to be set from data by `trickbench.callbacks.PatchWhitening`.
        head_pool: "global_max" over the final map, or "max3" = `nn.MaxPool2d(3)` as in airbench94 (on
            the 4x4 map of a 32-px image that is the top-left 3x3 window).
    """

    def __init__(
        self,
        widths: list[int] = [64, 256, 256],
        stem_width: int = 24,
        num_classes: int = 10,
        norm: Norm = "bn",
        weight_std: bool = False,
        residual: bool = True,
        drop_path_rate: float = 0.0,
        logit_scale: float = 1 / 9,
        init: Init = "default",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        train_norm_weight: bool = True,
        whiten_stem: bool = False,
        head_pool: HeadPool = "global_max",
    ) -> None:
        super().__init__()
        check_range("AirbenchNet", "drop_path_rate", drop_path_rate, 0.0, 1.0, high_open=True)
        check_range("AirbenchNet", "bn_momentum", bn_momentum, 0.0, 1.0)
        if drop_path_rate > 0 and not residual:
            raise ValueError(
                f"AirbenchNet(residual=False) has no residual branch to drop, so drop_path_rate={drop_path_rate} "
                "would do nothing: set residual: true, or drop_path_rate: 0"
            )
        if head_pool not in ("global_max", "max3"):
            raise ValueError(f"AirbenchNet head_pool must be 'global_max' or 'max3', got {head_pool!r}")
        self.whiten_stem = whiten_stem
        # A whitened stem is a frozen data transform, not a learned conv: weight standardization would undo it
        # (the mean-luminance filter's own mean is most of it, so standardizing leaves noise; the 1/sqrt(eigenvalue)
        # scaling is divided away), so `weight_std` applies to the learned convs only.
        stem_ws = weight_std and not whiten_stem
        self.stem = nn.Sequential(
            conv(3, stem_width, 2, padding=0, bias=True, weight_std=stem_ws, init=init), nn.GELU()
        )
        if whiten_stem:
            self.stem[0].weight.requires_grad_(False)
            # Set by PatchWhitening once the stem holds the data's whitening filters (saved in checkpoints).
            self.register_buffer("stem_whitened", torch.tensor(False))
        norm_kwargs = {"eps": bn_eps, "momentum": bn_momentum, "train_weight": train_norm_weight}
        groups, in_ch = [], stem_width
        for i, w in enumerate(widths):
            drop = DropPath(drop_path_rate, depth_scale=(i + 1) / len(widths)) if residual else None
            groups.append(ConvGroup(in_ch, w, norm, weight_std, init, drop, norm_kwargs))
            in_ch = w
        self.groups = nn.Sequential(*groups)
        pool = nn.AdaptiveMaxPool2d(1) if head_pool == "global_max" else nn.MaxPool2d(3)
        self.head = nn.Sequential(pool, nn.Flatten(), nn.Linear(in_ch, num_classes, bias=False))
        self.logit_scale = logit_scale

    @property
    def stem_conv(self) -> nn.Conv2d:
        return self.stem[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.groups(self.stem(x))) * self.logit_scale
