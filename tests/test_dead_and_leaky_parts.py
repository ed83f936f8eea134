"""Parts that did nothing or leaked, found by comparison with timm and torchvision (each failed before its fix).

- AirbenchNet(residual=False) built DropPath modules its forward never called, and the stochastic-depth
  scheduler accepted it;
- drop_path with its rate in a buffer drew a Bernoulli mask (and advanced the global RNG) at p = 0;
- GroupNorm used min(32, C) groups: one channel per group (InstanceNorm) on ResNet-20's 16/32-channel stages;
- ResNet-20 had projection shortcuts only (He et al.'s CIFAR ResNet-20 uses the parameter-free option A).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from trickbench.callbacks import StochasticDepthScheduler
from trickbench.lightning_modules.nets import AirbenchNet, ResNet18, ResNet20
from trickbench.lightning_modules.nets.resnet import PadShortcut
from trickbench.lightning_modules.ops.drop_path import DropPath


def test_airbench_without_residual_has_no_drop_path_and_the_scheduler_refuses_it():
    plain = AirbenchNet(widths=[8, 16, 16], residual=False)
    assert not any(isinstance(m, DropPath) for m in plain.modules())
    with pytest.raises(ValueError, match="no residual branch"):
        AirbenchNet(widths=[8, 16, 16], residual=False, drop_path_rate=0.1)
    module = nn.Module()
    module.net = plain
    trainer = SimpleNamespace(max_epochs=2)
    with pytest.raises(ValueError, match="no DropPath modules"):
        StochasticDepthScheduler(base_rate=0.1).on_fit_start(trainer, module)
    residual = nn.Module()
    residual.net = AirbenchNet(widths=[8, 16, 16], residual=True)
    StochasticDepthScheduler(base_rate=0.1).on_fit_start(trainer, residual)  # a net that applies it is accepted
    assert sum(isinstance(m, DropPath) for m in residual.modules()) == 3


def test_drop_path_at_rate_zero_is_free_and_a_scheduled_rate_switches_it_on_and_off():
    m = DropPath(0.0).train()
    x = torch.randn(64, 4)
    state = torch.get_rng_state()
    assert m(x) is x and torch.equal(torch.get_rng_state(), state)  # no mask drawn, RNG untouched
    m.set_base_rate(0.5)
    out = m(x)
    assert not torch.equal(torch.get_rng_state(), state)
    dropped = (out == 0).all(1)
    assert 10 < int(dropped.sum()) < 54 and torch.allclose(out[~dropped], 2 * x[~dropped])
    m.set_base_rate(0.0)
    state = torch.get_rng_state()
    assert m(x) is x and torch.equal(torch.get_rng_state(), state)
    # A checkpoint's rate decides after load_state_dict, not the constructor's.
    loaded = DropPath(0.0)
    loaded.load_state_dict({"p": torch.tensor(0.3)})
    assert loaded.active and loaded.train()(x) is not x
    # A whole net with stochastic depth off trains without touching the global RNG.
    net = ResNet20().train()
    state = torch.get_rng_state()
    net(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: ResNet20(norm="gn"), {(16, 1), (32, 2), (64, 4)}),
        (lambda: AirbenchNet(norm="gn"), {(64, 4), (256, 16)}),
        (lambda: ResNet18(norm="gn"), {(64, 4), (128, 8), (256, 16), (512, 32)}),
    ],
)
def test_group_norm_has_16_channels_per_group_never_one(make, expected):
    assert {(m.num_channels, m.num_groups) for m in make().modules() if isinstance(m, nn.GroupNorm)} == expected


def test_resnet20_offers_the_papers_parameter_free_shortcut_as_default():
    a, b = ResNet20(), ResNet20(shortcut="B")
    assert sum(p.numel() for p in a.parameters()) == 269_722  # He et al. (2016): 0.27M, option A
    assert sum(p.numel() for p in b.parameters()) == 272_474
    assert sum(isinstance(m, PadShortcut) for m in a.modules()) == 2 and not any(
        isinstance(m, PadShortcut) for m in b.modules()
    )
    x = torch.randn(2, 16, 8, 8)
    out = PadShortcut(16, 32, 2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2]) and not out[:, :8].any() and not out[:, 24:].any()
    assert ResNet18().stages[1][0].shortcut[0].kernel_size == (1, 1)  # ResNet-18 keeps projections
