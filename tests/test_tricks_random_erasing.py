"""Random erasing: the pure function (lightning_modules/ops/erasing.py) against torchvision's `erase`, its
statistics, and its applier (CIFAR10DataModule(random_erasing=)); the fit-time claim (the images a step trains on
have erased boxes) is in tests/test_tricks_fragments.py."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from trickbench.datamodules import CIFAR10DataModule
from trickbench.lightning_modules.ops.erasing import erasing_boxes, random_erasing


def test_each_box_is_what_torchvision_erase_sets():
    x = torch.randn(64, 3, 32, 32)
    boxes = erasing_boxes(64, 32, 32, torch.Generator().manual_seed(1), p=0.7)
    out = random_erasing(x, torch.Generator().manual_seed(1), p=0.7, value=0.5)
    for img, got, (top, left, h, w) in zip(x, out, boxes.tolist()):
        want = TF.erase(img, top, left, h, w, torch.tensor(0.5)) if h else img
        assert torch.equal(got, want)
    assert 0 < sum(1 for b in boxes if b[2] > 0) < 64


def test_probability_area_and_aspect_follow_the_arguments():
    n, p, scale, ratio = 20000, 0.5, (0.02, 0.33), (0.3, 3.3)
    boxes = erasing_boxes(n, 32, 32, torch.Generator().manual_seed(0), p, scale, ratio).double()
    on = boxes[:, 2] > 0
    assert abs(on.double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
    h, w = boxes[on, 2], boxes[on, 3]
    area = h * w / 1024
    assert area.min() >= 0.5 * scale[0] and area.max() <= 1.0 and abs(area.mean().item() - sum(scale) / 2) < 0.03
    assert ((boxes[on, 0] + h) <= 32).all() and ((boxes[on, 1] + w) <= 32).all()  # inside the image
    log_r = (h / w).log()
    assert log_r.min() >= math.log(ratio[0]) - 0.5 and log_r.max() <= math.log(ratio[1]) + 0.5
    assert abs(log_r.mean().item()) < 0.05  # log-uniform over a range symmetric about 1


def test_off_is_the_identity_and_draws_nothing():
    x, g = torch.randn(4, 3, 8, 8), torch.Generator().manual_seed(3)
    state = g.get_state()
    assert random_erasing(x, g, p=0.0) is x and torch.equal(g.get_state(), state)


def test_the_datamodule_erases_to_the_mean_colour_after_the_other_augmentations():
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    base = CIFAR10DataModule(seed=0)
    erased = CIFAR10DataModule(seed=0, random_erasing=1.0)
    g0, g1 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    plain, out = base.train_transform(x, g0), erased.train_transform(x, g1)
    zero = (out == 0).all(1)  # (N, H, W): pixels at the mean colour in every channel
    assert zero.flatten(1).any(1).all()  # p = 1: every image has a box
    assert torch.equal(out[~zero[:, None].expand_as(out)], plain[~zero[:, None].expand_as(plain)])


def test_a_bad_probability_is_one_clear_error():
    with pytest.raises(ValueError, match="random_erasing"):
        CIFAR10DataModule(random_erasing=1.5)
