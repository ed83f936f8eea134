"""Random erasing (Zhong et al., 2020, *Random Erasing Data Augmentation*) on a batch, per sample.

torchvision's `v2.RandomErasing` draws one box per call, i.e. one per batch when given a batch; here every image
gets its own coin flip and box (area fraction ~ U(scale), log aspect ratio ~ U(log ratio), the box inside the
image), drawn from an explicit CPU generator so the stream is device-independent and resumable. The box is filled
with `value` by `torchvision.transforms.v2.functional.erase`'s rule (the same pixels it would set for that box).
"""

from __future__ import annotations

import math

import torch


def erasing_boxes(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> torch.Tensor:
    """(n, 4) int boxes `(top, left, h, w)` per image; h = w = 0 for an image left alone (probability 1 - p).

    Area and aspect ratio are drawn once per image; a box that would not fit is shrunk to fit (torchvision redraws
    up to 10 times instead, which would make the number of random draws depend on the data)."""
    u = torch.rand((5, n), generator=generator, dtype=torch.float64)
    on = u[0] < p
    area = height * width * (scale[0] + (scale[1] - scale[0]) * u[1])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[2]
    h = torch.sqrt(area * torch.exp(log_r)).round().clamp(1, height).long()
    w = torch.sqrt(area / torch.exp(log_r)).round().clamp(1, width).long()
    top = (u[3] * (height - h + 1)).floor().long()
    left = (u[4] * (width - w + 1)).floor().long()
    return torch.stack([top, left, h * on, w * on], dim=1)


def random_erasing(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
) -> torch.Tensor:
    """Erase one random box per image of `x` (N, C, H, W) with probability `p`; a new tensor (no host sync)."""
    if p <= 0:
        return x
    n, _, height, width = x.shape
    boxes = erasing_boxes(n, height, width, generator, p, scale, ratio).to(x.device)
    top, left, h, w = boxes.unbind(1)
    rows = torch.arange(height, device=x.device)[None, :]
    cols = torch.arange(width, device=x.device)[None, :]
    in_y = (rows >= top[:, None]) & (rows < (top + h)[:, None])
    in_x = (cols >= left[:, None]) & (cols < (left + w)[:, None])
    return x.masked_fill((in_y[:, :, None] & in_x[:, None, :])[:, None], value)
