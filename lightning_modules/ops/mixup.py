"""Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) as a `batch_mix` for the Classifier.

`MixupCutmix(x, y) -> (x_mixed, soft_targets)`: each sample is mixed with its neighbour in the
(shuffled) batch, `x.roll(1, 0)`, and its one-hot target becomes `lam * y + (1 - lam) * y_rolled`,
where `lam` is the fraction of the sample's own image that survives. Targets always come back as
(N, C) float rows that sum to one, so label smoothing in `F.cross_entropy` applies on top.

Per-batch lambda (one draw per batch, as in both papers) uses torchvision's `transforms.v2.MixUp`
/ `CutMix`. Per-sample lambda (timm's "elem" mode) is hand-written below because torchvision only
draws one lambda per call; it uses the same pairing (roll by one) and the same box rule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2


def sample_lambda(alpha: float, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """n draws from Beta(alpha, alpha) (float32, on `device`), from the global torch RNG."""
    a = torch.tensor(float(alpha), device=device)
    return torch.distributions.Beta(a, a).sample((n,))


def cutmix_boxes(lam: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One box per lambda: side ratio sqrt(1 - lam), uniform centre, clipped at the image border.

    Returns (boxes (N, 4) int64 as y0, y1, x0, x1 pixel bounds, lam_actual (N,)). lam_actual =
    1 - box_area / image_area corrects lam for clipping, so the targets match the pixels.
    """
    n, dev = lam.shape[0], lam.device
    half = 0.5 * torch.sqrt(1.0 - lam)  # half side / image side; truncated to pixels like torchvision
    hh, hw = (half * height).long(), (half * width).long()
    cy = torch.randint(0, height, (n,), device=dev)
    cx = torch.randint(0, width, (n,), device=dev)
    y0, y1 = (cy - hh).clamp(0, height), (cy + hh).clamp(0, height)
    x0, x1 = (cx - hw).clamp(0, width), (cx + hw).clamp(0, width)
    area = ((y1 - y0) * (x1 - x0)).to(lam.dtype)
    return torch.stack([y0, y1, x0, x1], 1), 1.0 - area / (height * width)


def box_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 4) boxes -> (N, 1, H, W) bool mask, True inside each sample's box."""
    rows = torch.arange(height, device=boxes.device)[None, :, None]
    cols = torch.arange(width, device=boxes.device)[None, None, :]
    y0, y1, x0, x1 = (boxes[:, i, None, None] for i in range(4))
    return ((rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1))[:, None]


def mix_per_sample(
    x: torch.Tensor, soft: torch.Tensor, mixup_alpha: float, cutmix_alpha: float, prob: float, switch_prob: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample lambda: each sample independently is left alone (1 - prob), cut-mixed
    (prob * switch_prob) or mixed up (the rest). Pairs sample i with sample i - 1."""
    n, dev = x.shape[0], x.device
    apply = torch.rand(n, device=dev) < prob
    use_cut = torch.rand(n, device=dev) < (switch_prob if mixup_alpha > 0 else 1.0)
    if cutmix_alpha <= 0:
        use_cut = torch.zeros_like(apply)
    lam = torch.ones(n, device=dev)
    if mixup_alpha > 0:
        lam = torch.where(apply & ~use_cut, sample_lambda(mixup_alpha, n, dev), lam)
    x_other = x.roll(1, 0)
    out = torch.lerp(x_other, x, lam.view(-1, 1, 1, 1).to(x.dtype))  # lam * x + (1 - lam) * x_other
    if cutmix_alpha > 0:
        boxes, lam_cut = cutmix_boxes(sample_lambda(cutmix_alpha, n, dev), x.shape[-2], x.shape[-1])
        cut = apply & use_cut
        out = torch.where(box_mask(boxes, *x.shape[-2:]) & cut.view(-1, 1, 1, 1), x_other, out)
        lam = torch.where(cut, lam_cut, lam)
    lam = lam[:, None].to(soft.dtype)
    return out, lam * soft + (1 - lam) * soft.roll(1, 0)


class MixupCutmix:
    """`batch_mix` for the Classifier: mixup and/or CutMix with probability `prob` per batch
    (or per sample), choosing CutMix with probability `switch_prob` when both alphas are > 0.

    mixup_alpha / cutmix_alpha: Beta(alpha, alpha) concentration; 0 switches that mix off.
    per_sample: one lambda (and one apply/switch decision) per sample instead of per batch.

    Args:
        num_classes: number of classes (output units) (targets become one-hot rows)
        mixup_alpha: mixup Beta(alpha, alpha) concentration; 0 switches mixup off
        cutmix_alpha: CutMix Beta(alpha, alpha) concentration; 0 switches CutMix off
        prob: probability of mixing a batch (or a sample, with per_sample)
        switch_prob: probability of CutMix instead of mixup when both alphas are > 0
        per_sample: one lambda and one apply/switch decision per sample instead of per batch
    """

    def __init__(
        self,
        num_classes: int = 10,
        mixup_alpha: float = 0.2,
        cutmix_alpha: float = 0.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        per_sample: bool = False,
    ) -> None:
        if mixup_alpha < 0 or cutmix_alpha < 0 or mixup_alpha == cutmix_alpha == 0:
            raise ValueError(
                f"MixupCutmix needs mixup_alpha > 0 and/or cutmix_alpha > 0 (both >= 0), got "
                f"mixup_alpha={mixup_alpha}, cutmix_alpha={cutmix_alpha}. Set batch_mix: null to switch mixing off."
            )
        if not (0 <= prob <= 1 and 0 <= switch_prob <= 1):
            raise ValueError(f"prob and switch_prob are probabilities in [0, 1], got {prob}, {switch_prob}")
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = num_classes, mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.per_sample = prob, switch_prob, per_sample
        self.mixup = v2.MixUp(alpha=mixup_alpha, num_classes=num_classes) if mixup_alpha > 0 else None
        self.cutmix = v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes) if cutmix_alpha > 0 else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"MixupCutmix mixes image batches (N, C, H, W); got shape {tuple(x.shape)}")
        soft = F.one_hot(y, self.num_classes).float() if y.dim() == 1 else y.float()
        if self.per_sample:
            return mix_per_sample(x, soft, self.mixup_alpha, self.cutmix_alpha, self.prob, self.switch_prob)
        if torch.rand(()) >= self.prob:  # CPU draw: no device sync
            return x, soft
        use_cut = self.mixup is None or (self.cutmix is not None and torch.rand(()) < self.switch_prob)
        return (self.cutmix if use_cut else self.mixup)(x, soft)

    def __repr__(self) -> str:
        return (
            f"MixupCutmix(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, prob={self.prob}, "
            f"switch_prob={self.switch_prob}, per_sample={self.per_sample})"
        )
