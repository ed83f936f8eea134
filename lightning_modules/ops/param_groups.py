"""Optimizer parameter groups: no weight decay on 1-D tensors (nanoGPT / timm rule) and a separate
learning-rate multiplier for normalisation layers (airbench94 trains BatchNorm biases 64x faster)."""

from __future__ import annotations

from typing import Any

from torch import nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def norm_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters of every BatchNorm / GroupNorm / LayerNorm in `model`."""
    return {id(p) for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters(recurse=False)}


def param_groups(model: nn.Module, no_decay_1d: bool = True, norm_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """Trainable parameters in up to three groups: >=2-D weights; other 1-D tensors (weight decay 0 when
    `no_decay_1d`); norm-layer parameters with `lr_scale: norm_lr_scale` when that is not 1 (also without
    decay under `no_decay_1d`). `optim.scale_group_lrs` applies `lr_scale` once the optimizer exists."""
    params = [p for p in model.parameters() if p.requires_grad]
    norm = norm_parameters(model) if norm_lr_scale != 1.0 else set()
    groups: list[dict[str, Any]] = []
    if no_decay_1d:
        groups += [
            {"params": [p for p in params if p.dim() >= 2 and id(p) not in norm]},
            {"params": [p for p in params if p.dim() < 2 and id(p) not in norm], "weight_decay": 0.0},
        ]
    else:
        groups.append({"params": [p for p in params if id(p) not in norm]})
    if norm:
        group: dict[str, Any] = {"params": [p for p in params if id(p) in norm], "lr_scale": norm_lr_scale}
        if no_decay_1d:
            group["weight_decay"] = 0.0
        groups.append(group)
    return groups
