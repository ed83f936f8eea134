"""Every LightningModule x a compatible DataModule: real optimisation steps reduce the loss."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch import Callback, seed_everything
from torch.utils.data import DataLoader
from tricks_util import cpu_trainer

from trickbench.datamodules import CIFAR10DataModule, MNISTDataModule, SyntheticRegressionDataModule
from trickbench.lightning_modules import Classifier, Regressor
from trickbench.lightning_modules.nets import MLP, AirbenchNet, PreActResNet18, ResNet18, ResNet20, SmallCNN


def _batch(dm, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm.setup("fit")
    x, y = dm.splits["train"]
    return dm.eval_transform(x[:n]), y[:n]


class _StepLosses(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(float(outputs["loss"]))


def _loss_drops(module_cls, net, x, y, steps: int, lr: float) -> tuple[float, float]:
    """The module's own `training_step`, run by a Trainer on the same batch `steps` times: first and last loss."""
    module = module_cls(net, optimizer=lambda p: torch.optim.Adam(p, lr=lr))
    losses = _StepLosses()
    cpu_trainer([losses], max_steps=steps).fit(module, DataLoader([(x, y)] * steps, batch_size=None))
    assert len(losses.values) == steps
    return losses.values[0], losses.values[-1]


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
    first, last = _loss_drops(Classifier, CIFAR_NETS[name](), x, y, steps=8, lr=3e-3)
    assert last < 0.6 * first, (first, last)


@pytest.mark.parametrize("net", [lambda: MLP(784, [64], 10), lambda: SmallCNN(width=8, hidden=32)])
def test_mnist_classifiers_learn_a_fixed_batch(net, fake_mnist):
    seed_everything(0)
    x, y = _batch(MNISTDataModule(str(fake_mnist), val_size=10, accept_nonoriginal=True), 32)
    first, last = _loss_drops(Classifier, net(), x, y, steps=15, lr=3e-3)
    assert last < 0.3 * first, (first, last)


def test_regressor_learns_synthetic_data():
    seed_everything(0)
    x, y = _batch(SyntheticRegressionDataModule(input_dim=4, function="sine"), 256)
    first, last = _loss_drops(Regressor, MLP(4, [32, 32], 1), x, y, steps=100, lr=1e-2)
    assert last < 0.3 * first, (first, last)


def test_resnet_shapes_and_param_counts():
    x = torch.randn(2, 3, 32, 32)
    assert ResNet18()(x).shape == (2, 10) and AirbenchNet()(x).shape == (2, 10)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 11.1e6 < count(ResNet18()) < 11.2e6  # CIFAR ResNet-18: 11.17M
    assert 0.26e6 < count(ResNet20()) < 0.28e6  # He et al.: 0.27M


def test_train_accuracy_counters_match_torchmetrics_and_read_old_checkpoints() -> None:
    """The running train accuracy (two on-device counters, no host sync per step) counts what torchmetrics'
    micro accuracy counts, and a checkpoint from before the counters (torchmetrics' tp/fp/tn/fn) loads into them."""
    from torchmetrics.classification import MulticlassAccuracy

    from trickbench.lightning_modules import Classifier
    from trickbench.lightning_modules.nets import MLP

    torch.manual_seed(0)
    model = Classifier(MLP(input_dim=6, hidden_dims=[8], output_dim=4), num_classes=4)
    reference = MulticlassAccuracy(4, average="micro")
    for batch_idx in range(3):
        x, y = torch.randn(16, 6), torch.randint(0, 4, (16,))
        model.on_train_batch_start((x, y), batch_idx)
        model.training_step((x, y), batch_idx)
        reference.update(model(x).detach(), y)
    assert int(model.train_seen) == 48
    assert float(model.train_hits.float() / model.train_seen.float()) == float(reference.compute())
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("train_")}
    old.update({f"metrics.train_.{k}": getattr(reference, k) for k in ("tp", "fp", "tn", "fn")})
    fresh = Classifier(MLP(input_dim=6, hidden_dims=[8], output_dim=4), num_classes=4)
    fresh.load_state_dict(old, strict=True)
    assert (int(fresh.train_hits), int(fresh.train_seen)) == (int(model.train_hits), 48)
