"""Every LightningModule x a compatible DataModule: real optimisation steps reduce the loss."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch import seed_everything

from datamodules import CIFAR10DataModule, MNISTDataModule, SyntheticRegressionDataModule
from lightning_modules import Classifier, Regressor
from lightning_modules.nets import MLP, AirbenchNet, PreActResNet18, ResNet18, ResNet20, SmallCNN


def _batch(dm, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm.setup("fit")
    x, y = dm.splits["train"]
    return dm.eval_transform(x[:n]), y[:n]


def _loss_drops(module, x, y, steps: int, lr: float) -> tuple[float, float]:
    opt = torch.optim.Adam(module.net.parameters(), lr=lr)
    module.train()
    losses = []
    for _ in range(steps):
        out = module(x)
        loss = torch.nn.functional.mse_loss(out, y) if y.dtype.is_floating_point else torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses[0], losses[-1]


CIFAR_NETS = {
    "resnet18": lambda: ResNet18(),
    "preact18": lambda: PreActResNet18(),
    "resnet20": lambda: ResNet20(),
    "airbench": lambda: AirbenchNet(),
    "airbench_gn_ws": lambda: AirbenchNet(norm="gn", weight_std=True),
}


@pytest.mark.parametrize("name", list(CIFAR_NETS))
def test_cifar_classifiers_learn_a_fixed_batch(name, fake_cifar):
    seed_everything(0)
    x, y = _batch(CIFAR10DataModule(str(fake_cifar), val_size=10, accept_nonoriginal=True), 16)
    first, last = _loss_drops(Classifier(CIFAR_NETS[name]()), x, y, steps=8, lr=3e-3)
    assert last < 0.6 * first, (first, last)


@pytest.mark.parametrize("net", [lambda: MLP(784, [64], 10), lambda: SmallCNN(width=8, hidden=32)])
def test_mnist_classifiers_learn_a_fixed_batch(net, fake_mnist):
    seed_everything(0)
    x, y = _batch(MNISTDataModule(str(fake_mnist), val_size=10, accept_nonoriginal=True), 32)
    first, last = _loss_drops(Classifier(net()), x, y, steps=15, lr=3e-3)
    assert last < 0.3 * first, (first, last)


def test_regressor_learns_synthetic_data():
    seed_everything(0)
    x, y = _batch(SyntheticRegressionDataModule(input_dim=4, function="sine"), 256)
    first, last = _loss_drops(Regressor(MLP(4, [32, 32], 1)), x, y, steps=100, lr=1e-2)
    assert last < 0.3 * first, (first, last)


def test_resnet_shapes_and_param_counts():
    x = torch.randn(2, 3, 32, 32)
    assert ResNet18()(x).shape == (2, 10) and AirbenchNet()(x).shape == (2, 10)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 11.1e6 < count(ResNet18()) < 11.2e6  # CIFAR ResNet-18: 11.17M
    assert 0.26e6 < count(ResNet20()) < 0.28e6  # He et al.: 0.27M


def test_tta_flip_averages_both_views():
    net = AirbenchNet(widths=[8, 8, 8])
    module = Classifier(net, tta_flip=True).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = (net(x) + net(x.flip(-1))) / 2
        module.log = lambda *a, **k: None  # no trainer attached
        logits = module(x)
    assert not torch.allclose(logits, expected)  # forward alone is not TTA ...
    seen = {}
    module.metrics["val_"].update = lambda preds, target: seen.setdefault("logits", preds)
    module._eval_step((x, torch.zeros(4, dtype=torch.long)), "val")
    assert torch.allclose(seen["logits"], expected, atol=1e-6)  # ... the eval step is
