"""Helpers shared by tests/test_tricks_*.py: a tiny Classifier, a CPU Trainer, an LR recorder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader, TensorDataset

from trickbench.lightning_modules import Classifier
from trickbench.lightning_modules.nets import MLP


def tiny_classifier(lr: float = 0.5, scheduler: Callable | None = None, **kwargs: Any) -> Classifier:
    torch.manual_seed(0)
    net = MLP(input_dim=4, hidden_dims=[8], output_dim=3)
    return Classifier(
        net, num_classes=3, optimizer=lambda p: torch.optim.SGD(p, lr=lr), lr_scheduler=scheduler, **kwargs
    )


def tiny_loader(n: int = 32, batch_size: int = 8, dim: int = 4, classes: int = 3) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, dim, generator=g), torch.randint(0, classes, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def cpu_trainer(callbacks: list[Callback], **kwargs: Any) -> Trainer:
    opts: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
        "log_every_n_steps": 1,
    }
    return Trainer(callbacks=callbacks, **{**opts, **kwargs})


class LRRecorder(Callback):
    """The LR of param group 0 used by each optimizer step (read just before the step's batch)."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: Trainer, *args: Any) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


SYNC_WINDOW = (3, 11)  # tests/test_step_sync.py counts from the end of optimizer step 3 to the end of step 11


class SyncCounter(Callback):
    """Sets `SyncCounter.counting` inside SYNC_WINDOW. Appended last, so the window holds every other callback's
    batch hooks of the steps inside it (tests/test_step_sync.py; named by this module's path in its config)."""

    counting = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        SyncCounter.counting = SYNC_WINDOW[0] <= trainer.global_step < SYNC_WINDOW[1]
