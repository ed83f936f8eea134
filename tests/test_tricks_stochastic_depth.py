"""Stochastic depth: drop-path statistics, the nets' depth rule, and the rate schedule over training."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from tricks_util import cpu_trainer, tiny_classifier, tiny_loader

from trickbench.callbacks.stochastic_depth import StochasticDepthScheduler, drop_path_modules
from trickbench.lightning_modules import Classifier
from trickbench.lightning_modules.nets import AirbenchNet, ResNet18, ResNet20
from trickbench.lightning_modules.ops.drop_path import DropPath, drop_path
from trickbench.lightning_modules.ops.schedules import drop_rate


def test_eval_is_identity_and_train_statistics():
    torch.manual_seed(0)
    x = torch.ones(20000, 3, 2, 2)
    dp = DropPath(0.3)
    assert torch.equal(dp.eval()(x), x)
    out = dp.train()(x)
    kept = (out != 0).all(dim=(1, 2, 3))
    assert torch.equal((out == 0).all(dim=(1, 2, 3)), ~kept)  # whole samples are dropped, never parts
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.01)  # keep rate 1 - p
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.7))  # survivors scaled by 1 / (1 - p)
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)  # expectation preserved
    assert torch.equal(drop_path(x, 0.0, True), x)


@pytest.mark.parametrize("net_cls,blocks", [(ResNet20, 9), (ResNet18, 8), (AirbenchNet, 3)])
def test_nets_use_linear_depth_rule(net_cls, blocks):
    net = net_cls(drop_path_rate=0.2)
    rates = [float(m.p) for m in drop_path_modules(net)]
    assert rates == pytest.approx([0.2 * (i + 1) / blocks for i in range(blocks)])


@pytest.mark.parametrize(
    "schedule,expect",
    [("constant", [0.2] * 5), ("linear_up", [0, 0.05, 0.1, 0.15, 0.2]), ("linear_down", [0.2, 0.15, 0.1, 0.05, 0])],
)
def test_callback_sets_rate_each_epoch(schedule, expect):
    class Net(nn.Module):  # two DropPath blocks at relative depths 0.5 and 1
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.d1, self.d2 = nn.Linear(4, 3), DropPath(0.0, 0.5), DropPath(0.0, 1.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.d2(self.d1(self.fc(x)))

    seen: list[tuple[float, float]] = []

    class Probe(StochasticDepthScheduler):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append((float(pl_module.net.d1.p), float(pl_module.net.d2.p)))

    model = Classifier(Net(), num_classes=3, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    cpu_trainer([Probe(base_rate=0.2, schedule=schedule)], max_epochs=5, limit_train_batches=1).fit(
        model, tiny_loader()
    )
    assert [d2 for _, d2 in seen] == pytest.approx(expect)
    assert [d1 for d1, _ in seen] == pytest.approx([e / 2 for e in expect])


def test_rate_function_and_ramp_fraction():
    assert drop_rate(0.25, 0.2, "linear_up", ramp_fraction=0.5) == pytest.approx(0.1)
    assert drop_rate(0.9, 0.2, "linear_up", ramp_fraction=0.5) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="linear_up"):
        drop_rate(0.5, 0.1, "cosine")  # type: ignore[arg-type]


def test_callback_without_droppath_raises_clear_error():
    with pytest.raises(ValueError, match="no DropPath"):
        cpu_trainer([StochasticDepthScheduler(0.1)], max_steps=1).fit(tiny_classifier(), tiny_loader())
