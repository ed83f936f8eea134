"""Mixup / CutMix (lambda distribution, mixed labels, box areas) and label smoothing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trickbench.lightning_modules.ops.mixup import MixupCutmix, box_mask, cutmix_boxes

C = 10


def indexed_batch(n: int = 16, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is the constant i, label i % C (neighbours always differ): pixels and targets tell which mixed."""
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, size, size).clone()
    return x, torch.arange(n) % C


def own_fraction(x_mixed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per sample, the fraction of the image that is its own (cutmix) / its own weight (mixup)."""
    other = x.roll(1, 0)
    return ((x_mixed - other) / (x - other)).mean(dim=(1, 2, 3))


@pytest.mark.parametrize("per_sample", [False, True])
def test_mixup_lambda_is_beta_and_labels_match(per_sample):
    torch.manual_seed(0)
    mix, lams = MixupCutmix(C, mixup_alpha=0.4, cutmix_alpha=0.0, per_sample=per_sample), []
    x, y = indexed_batch()
    for _ in range(400 if not per_sample else 40):
        xm, t = mix(x, y)
        lam = own_fraction(xm, x)
        assert torch.allclose(t.sum(1), torch.ones(len(y)))
        assert torch.allclose(t[torch.arange(len(y)), y], lam, atol=1e-5)  # label weight == pixel weight
        assert torch.allclose(t[torch.arange(len(y)), y.roll(1)], 1 - lam, atol=1e-5)
        lams.append(lam if per_sample else lam[:1])
        if not per_sample:
            assert torch.allclose(lam, lam[0].expand_as(lam), atol=1e-5)  # one lambda per batch
    lam = torch.cat(lams)
    assert len(lam) == 400 + 240 * per_sample
    assert lam.mean().item() == pytest.approx(0.5, abs=0.04)
    assert lam.var().item() == pytest.approx(1 / (4 * (2 * 0.4 + 1)), abs=0.02)  # Beta(a, a) variance = 0.139


@pytest.mark.parametrize("per_sample", [False, True])
def test_cutmix_box_area_matches_label_weight(per_sample):
    torch.manual_seed(1)
    mix = MixupCutmix(C, mixup_alpha=0.0, cutmix_alpha=1.0, per_sample=per_sample)
    x, y = indexed_batch(size=32)
    lams = []
    for _ in range(100):
        xm, t = mix(x, y)
        own = (xm == x).float().mean(dim=(1, 2, 3))  # area that kept its own pixels
        assert set(xm.unique().tolist()) <= set(x.unique().tolist())  # pixels are copied, never blended
        assert torch.allclose(t[torch.arange(len(y)), y], own, atol=1e-6)
        assert torch.allclose(t.sum(1), torch.ones(len(y)))
        lams.append(own)
    lam = torch.cat(lams)
    # alpha=1: 1 - lam = u ~ U(0, 1); a box of half side h = sqrt(u)/2 with a uniform centre keeps a clipped side
    # of 2h - h^2, so E[own] = 1 - E[(sqrt(u) - u/4)^2] = 1 - (1/2 - 1/5 + 1/48) = 0.679 (+~0.02 from whole pixels).
    assert lam.mean().item() == pytest.approx(0.69, abs=0.03 if per_sample else 0.08)
    assert lam.min() < 0.4 and lam.max() > 0.99  # big boxes happen, and near-empty ones


def test_cutmix_boxes_geometry():
    torch.manual_seed(0)
    lam = torch.full((2000,), 0.75)
    boxes, lam_actual = cutmix_boxes(lam, 32, 32)
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    assert (area <= 16 * 16).all() and (area == 16 * 16).float().mean() > 0.2  # side = sqrt(1 - .75) * 32
    assert torch.allclose(lam_actual, 1 - area / 1024)
    assert torch.equal(box_mask(boxes, 32, 32).sum(dim=(1, 2, 3)), area)


def test_prob_zero_and_per_sample_prob():
    torch.manual_seed(0)
    x, y = indexed_batch(n=1000, size=4)
    xm, t = MixupCutmix(C, mixup_alpha=1.0, prob=0.0)(x, y)
    assert torch.equal(xm, x) and torch.equal(t, F.one_hot(y, C).float())
    xm, t = MixupCutmix(C, mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.3, switch_prob=0.5, per_sample=True)(x, y)
    untouched = (xm == x).all(dim=(1, 2, 3)).float().mean().item()
    assert untouched == pytest.approx(0.7, abs=0.05)


def test_mixup_cutmix_fragment_switches_between_the_two_on_half_of_the_batches():
    """configs/tricks/mixup_cutmix.yaml: every batch mixed, CutMix (pixels copied whole) on ~half, mixup (pixels
    blended) on the rest."""
    import yaml

    args = yaml.safe_load(open("configs/tricks/mixup_cutmix.yaml"))["model"]["init_args"]["batch_mix"]["init_args"]
    mix = MixupCutmix(**args)
    torch.manual_seed(0)
    x, y = indexed_batch()
    kinds = []
    for _ in range(400):
        xm, _ = mix(x, y)
        copied = ((xm == x) | (xm == x.roll(1, 0))).all()  # a CutMix box may be empty on 8x8 images: still cutmix
        kinds.append("cutmix" if copied else "mixup")
    assert 0.42 <= kinds.count("cutmix") / 400 <= 0.58


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="batch_mix: null"):
        MixupCutmix(C, mixup_alpha=0.0, cutmix_alpha=0.0)
    with pytest.raises(ValueError, match="probabilities"):
        MixupCutmix(C, prob=1.5)


class _FixedMix(torch.nn.Module):
    """A batch_mix that returns fixed soft targets (what MixupCutmix hands the loss), so the test knows them."""

    def __init__(self, targets: torch.Tensor) -> None:
        super().__init__()
        self.targets = targets

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, self.targets


def _training_loss(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """The loss the module's own training_step returns for one batch (a Trainer drives it; lr 0)."""
    from lightning.pytorch import Callback
    from torch.utils.data import DataLoader
    from tricks_util import cpu_trainer

    seen: list[float] = []

    class Grab(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(float(outputs["loss"]))

    cpu_trainer([Grab()], max_steps=1).fit(model, DataLoader([(x, y)], batch_size=None))
    return seen[0]


@pytest.mark.parametrize("soft", [False, True])
def test_classifier_smooths_hard_and_mixed_targets(soft):
    """Classifier(label_smoothing=eps) trains on (1 - eps) * target + eps / C, also when the target is a
    mixup/CutMix row: checked against the hand-written smoothed cross-entropy."""
    from trickbench.lightning_modules import Classifier

    torch.manual_seed(0)
    logits, y, eps = torch.randn(6, C), torch.arange(6), 0.1
    _, mixed = MixupCutmix(C, mixup_alpha=1.0)(torch.randn(6, 3, 4, 4), y)
    target = mixed if soft else F.one_hot(y, C).float()
    identity = torch.nn.Linear(C, C)  # logits = the input exactly, with parameters for the optimizer
    torch.nn.init.eye_(identity.weight)
    torch.nn.init.zeros_(identity.bias)
    model = Classifier(
        identity,
        num_classes=C,
        label_smoothing=eps,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.0),
        batch_mix=_FixedMix(mixed) if soft else None,
    )
    expect = -(((1 - eps) * target + eps / C) * logits.log_softmax(1)).sum(1).mean().item()
    assert _training_loss(model, logits, y) == pytest.approx(expect, rel=1e-6)
    without = -(target * logits.log_softmax(1)).sum(1).mean().item()
    assert abs(expect - without) > 1e-3  # the smoothing is visible in the number
