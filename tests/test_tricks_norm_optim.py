"""GroupNorm + weight standardization, no-decay parameter groups, EMA of weights, flip TTA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tricks_util import cpu_trainer, tiny_classifier, tiny_loader

from trickbench.lightning_modules import Classifier
from trickbench.lightning_modules.nets import AirbenchNet, ResNet20
from trickbench.lightning_modules.ops.weight_std import WSConv2d, standardize_weight
from trickbench.lightning_modules.ops.whitening import whitening_filters


def test_standardized_weights_zero_mean_unit_var_per_output_channel():
    torch.manual_seed(0)
    w = torch.randn(16, 8, 3, 3) * 3 + 2
    ws = standardize_weight(w).flatten(1)
    assert torch.allclose(ws.mean(1), torch.zeros(16), atol=1e-5)
    assert torch.allclose(ws.var(1, unbiased=False), torch.ones(16), atol=1e-3)
    conv, x = WSConv2d(8, 16, 3, padding=1, bias=False), torch.randn(2, 8, 6, 6)
    assert torch.allclose(conv(x), F.conv2d(x, standardize_weight(conv.weight), padding=1), atol=1e-5)


@pytest.mark.parametrize("net_cls", [ResNet20, AirbenchNet])
def test_gn_ws_net_has_no_batchnorm_and_trains(net_cls):
    torch.manual_seed(0)
    kwargs = {"widths": [16, 32, 32], "logit_scale": 1.0} if net_cls is AirbenchNet else {}
    net = net_cls(norm="gn", weight_std=True, **kwargs)
    kinds = {type(m) for m in net.modules()}
    assert nn.GroupNorm in kinds and not kinds & {nn.BatchNorm2d, nn.Conv2d}  # every conv is a WSConv2d
    assert all(isinstance(m, WSConv2d) for m in net.modules() if isinstance(m, nn.Conv2d))
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]  # a fixed batch is memorised: the GN/WS net learns


def test_gn_ws_keeps_a_whitened_stem_whitening():
    # Regression: weight_std also standardized the frozen whitening stem, which undid it (the mean-luminance
    # filter became noise, the 1/sqrt(eigenvalue) scaling was divided away). The learned convs stay
    # standardized; the stem convolves with the data's whitening filters. (Not the cause of the CPU table's
    # gn_ws stall: with the fix its first epoch still trains at chance, see results/cifar10_cpu_fast.)
    images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.1
    images = images + torch.randn(64, 3, 1, 1, generator=torch.Generator().manual_seed(2))  # a shared brightness
    net = AirbenchNet(widths=[16, 32, 32], norm="gn", weight_std=True, whiten_stem=True)
    with torch.no_grad():
        net.stem_conv.weight.copy_(whitening_filters(images, 2, 5e-4))
        net.stem_conv.bias.zero_()
        out = net.stem_conv(images)[:, :12].permute(1, 0, 2, 3).reshape(12, -1)
    cov = out @ out.T / out.shape[1]
    assert torch.allclose(cov, torch.eye(12), atol=0.05), torch.diagonal(cov)
    convs = [m for m in net.groups.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(isinstance(m, WSConv2d) for m in convs)


def test_no_decay_groups_are_exactly_the_1d_params():
    net = AirbenchNet(widths=[16, 32, 32])
    model = Classifier(net, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=5e-4), no_decay_1d=True)
    opt = model.configure_optimizers()
    zero = {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == 5e-4 for p in g["params"]}
    assert zero == {id(p) for p in net.parameters() if p.dim() == 1} and len(zero) > 0
    assert decayed == {id(p) for p in net.parameters() if p.dim() >= 2}
    plain = Classifier(net, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=5e-4)).configure_optimizers()
    assert [g["weight_decay"] for g in plain.param_groups] == [5e-4]


class WeightRecorder(Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.weights.append(pl_module.net.layers[1].weight.detach().clone())


def test_ema_callback_matches_recurrence():
    rec, decay = WeightRecorder(), 0.7
    model = tiny_classifier(lr=0.5)
    cpu_trainer([rec, EMAWeightAveraging(decay=decay)], max_steps=4).fit(model, tiny_loader())
    ema = rec.weights[0]  # the first update copies the weights
    for w in rec.weights[1:]:
        ema = decay * ema + (1 - decay) * w
    final = model.net.layers[1].weight.detach()
    assert torch.allclose(final, ema, atol=1e-6)  # after fit the module holds the average
    assert not torch.allclose(final, rec.weights[-1], atol=1e-4)


def test_flip_tta_averages_logits_over_the_mirror():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 6, 6), torch.arange(8) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=8)

    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(64, 3))

    losses = {}
    for tta in (False, True):
        model = Classifier(net(), num_classes=3, tta_flip=tta)
        losses[tta] = cpu_trainer([], limit_val_batches=1).validate(model, loader, verbose=False)[0]["val/loss"]
    ref = net()
    with torch.no_grad():
        assert losses[False] == pytest.approx(F.cross_entropy(ref(x), y).item(), rel=1e-5)
        expect = F.cross_entropy((ref(x) + ref(x.flip(-1))) / 2, y).item()
    assert losses[True] == pytest.approx(expect, rel=1e-5) and losses[True] != pytest.approx(losses[False])
