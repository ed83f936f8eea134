"""Test-time augmentation as a pure function of the model's forward (airbench94's multi-crop TTA).

flip: average the logits of the image and its mirror. translate: average (weight 1/2) those with
the same for the image shifted by one pixel up-left and down-right (reflect padding), weight 1/4 each.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def tta_logits(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, flip: bool = False, translate: bool = False
) -> torch.Tensor:
    """Logits of `forward` on (N, C, H, W) images under the requested test-time views."""

    def views(z: torch.Tensor) -> torch.Tensor:
        return 0.5 * forward(z) + 0.5 * forward(z.flip(-1)) if flip else forward(z)

    logits = views(x)
    if translate:
        h, w = x.shape[-2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = [views(padded[..., :h, :w]), views(padded[..., 2 : 2 + h, 2 : 2 + w])]
        logits = 0.5 * logits + 0.5 * torch.stack(shifted).mean(0)
    return logits
