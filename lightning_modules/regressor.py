"""Regression y = f(x) with mean-squared error."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MeanSquaredError

from trickbench.lightning_modules import optim
from trickbench.lightning_modules.step_logging import log_step_now, with_bar


class Regressor(LightningModule):
    """Logs `{train,val,test}/loss` (MSE) and `{val,test}/rmse`.

    Args:
        net: the network, one output per target (e.g. lightning_modules.nets.MLP)
        optimizer: optimizer factory (a torch optimizer class path with its init_args; the module passes its parameter
            groups)
        lr_scheduler: LR scheduler factory, or null for a constant LR (with `scheduler_interval`)
        scheduler_interval: "step": the scheduler steps after every optimizer step; "epoch": once per epoch
        no_decay_1d: no weight decay on 1-d parameters (biases, norm scales): the no-bias-decay trick
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
        no_decay_1d: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "lr_scheduler"])
        self.net = net
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.rmse = nn.ModuleDict({s: MeanSquaredError(squared=False) for s in ("val_", "test_")})

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and getattr(dm, "num_classes", None) is not None:
            raise ValueError(
                f"Regressor cannot train on {type(dm).__name__}: it has class labels (num_classes={dm.num_classes}). "
                "Use the Classifier, or a regression DataModule such as SyntheticRegressionDataModule."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, log: bool = True) -> torch.Tensor:
        x, y = batch
        pred = self(x)
        loss = F.mse_loss(pred, y)
        if log:  # a training step logs on Lightning's logging steps only (lightning_modules/step_logging.py)
            bar = stage != "train" or with_bar(self)
            self.log(f"{stage}/loss", loss, prog_bar=bar, sync_dist=stage != "train")
        if stage != "train":
            self.rmse[f"{stage}_"](pred, y)
            self.log(f"{stage}/rmse", self.rmse[f"{stage}_"])
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", log_step_now(self, batch_idx))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        return optim.configure(
            self, self.net, self.optimizer, self.lr_scheduler, self.hparams.scheduler_interval, self.hparams.no_decay_1d
        )
