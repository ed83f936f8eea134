"""GPU checks: the device-resident loader and a bf16 fit on CUDA. Skipped without a CUDA device."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch import Trainer

from trickbench.datamodules import CIFAR10DataModule
from trickbench.lightning_modules import Classifier
from trickbench.lightning_modules.nets import AirbenchNet

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_device_resident_fit_bf16(fake_cifar):
    dm = CIFAR10DataModule(str(fake_cifar), val_size=20, accept_nonoriginal=True, batch_size=32, device_resident=True)
    model = Classifier(
        AirbenchNet(widths=[16, 32, 32]), optimizer=lambda p: torch.optim.SGD(p, lr=0.05), channels_last=True
    )
    trainer = Trainer(
        accelerator="gpu",
        devices=1,
        precision="bf16-mixed",
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, dm)
    x, _ = dm.splits["train"]
    assert x.device.type == "cuda" and x.dtype == torch.uint8  # the split lives on the GPU, still uint8
    assert torch.isfinite(trainer.callback_metrics["train/loss"]).item()
