"""Batched image augmentation on tensors (any device).

torchvision.transforms.v2 applies *one* set of random parameters to a whole batch, so
per-sample crops and flips are written here by hand: each is one gather or one `where`
over the batch, airbench-style, instead of a Python loop over samples.
Randomness comes from an explicit CPU `torch.Generator` so results do not depend on the
device and the stream can be checkpointed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _rand(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator)


def batch_random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator | None = None, mode: str = "constant"
) -> torch.Tensor:
    """Pad by `padding` pixels (`mode`: "constant" = zeros, or "reflect" as airbench94), then cut a random
    HxW window per sample (N, C, H, W).

    One `gather` over the flattened padded image rather than 4-D advanced indexing (same output bit for bit):
    one kernel on GPU, and no host sync.
    """
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode=mode)
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
    flat = rows[:, :, None] * (w + 2 * padding) + cols[:, None, :]  # (N, H, W) index into the padded plane
    return padded.flatten(2).gather(2, flat.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)


def batch_hflip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Mirror each sample left-right with probability `p`."""
    mask = (_rand((x.shape[0],), generator) < p).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def alternating_hflip(x: torch.Tensor, epoch: int) -> torch.Tensor:
    """airbench's flip schedule (Jordan, 2024): mirror the whole batch on odd epochs only.

    The caller mirrors a seeded random half of the stored training set once; then every image is
    seen mirrored exactly every other epoch, instead of i.i.d. coin flips that repeat a view.
    """
    return x.flip(-1) if epoch % 2 == 1 else x


def batch_cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a `size`x`size` square at a random centre per sample (DeVries & Taylor, 2017)."""
    if size <= 0:
        return x
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
    y0 = (cy - size // 2)[:, None]
    x0 = (cx - size // 2)[:, None]
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= y0) & (ys < y0 + size)
    in_x = (xs >= x0) & (xs < x0 + size)
    box = in_y[:, :, None] & in_x[:, None, :]  # (N, H, W)
    return x.masked_fill(box[:, None], 0)


def to_float(x: torch.Tensor, mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> torch.Tensor:
    """uint8 [0, 255] -> float32 in [0, 1], then per-channel normalisation when mean/std are given."""
    out = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    if mean is not None and std is not None:
        m = torch.tensor(mean, device=out.device).view(1, -1, 1, 1)
        s = torch.tensor(std, device=out.device).view(1, -1, 1, 1)
        out = (out - m) / s
    return out
