"""No weight decay on biases and normalisation parameters (nanoGPT / timm rule: every 1-D tensor)."""

from __future__ import annotations

from typing import Any

from torch import nn


def param_groups(model: nn.Module, no_decay_1d: bool = True) -> list[dict[str, Any]]:
    """Two optimizer groups: >=2-D weights keep the optimizer's weight decay, 1-D params get 0."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not no_decay_1d:
        return [{"params": params}]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
