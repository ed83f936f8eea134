"""Initialise a net's stem from the training data (patch whitening, airbench94) and train its bias
for the first `bias_epochs` epochs only."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from trickbench.lightning_modules.ops.whitening import whitening_filters


class PatchWhitening(Callback):
    """Set the stem conv of a net built with `whiten_stem: true` (AirbenchNet) to the whitening filters
    of the first `num_images` training images (as the model sees them at test time: normalised, not
    augmented), once per run (a resumed run keeps its checkpointed stem); the stem bias trains during
    the first `bias_epochs` epochs and is frozen after.

    Args:
        num_images: training images whose 2x2 patches give the covariance (airbench94: 5000).
        eps: added to each eigenvalue before the 1/sqrt scaling (airbench94: 5e-4).
        bias_epochs: epochs during which the stem bias trains (airbench94: 3).
    """

    def __init__(self, num_images: int = 5000, eps: float = 5e-4, bias_epochs: int = 3) -> None:
        if num_images < 1 or eps < 0 or bias_epochs < 0:
            raise ValueError(
                f"PatchWhitening needs num_images >= 1, eps >= 0, bias_epochs >= 0; got "
                f"{num_images}, {eps}, {bias_epochs}"
            )
        self.num_images, self.eps, self.bias_epochs = num_images, eps, bias_epochs

    @staticmethod
    def _net(pl_module: LightningModule) -> torch.nn.Module:
        net = getattr(pl_module, "net", None)
        if net is None or not getattr(net, "whiten_stem", False):
            raise ValueError(
                f"PatchWhitening needs a net built with whiten_stem: true (AirbenchNet), got "
                f"{type(net).__name__}{'' if net is None else ' with whiten_stem false'}: set "
                "model.init_args.net.init_args.whiten_stem: true, or remove the PatchWhitening callback"
            )
        return net

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        net = self._net(pl_module)
        if bool(net.stem_whitened):  # restored from a checkpoint
            return
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "sample_train_images"):
            raise ValueError(
                "PatchWhitening reads training images from a trickbench TensorDataModule "
                "(CIFAR10DataModule, MNISTDataModule); this run has none"
            )
        stem = net.stem_conv
        images = dm.sample_train_images(self.num_images).to(stem.weight.device)
        with torch.no_grad():
            filters = whitening_filters(images, stem.kernel_size[0], self.eps)
            if filters.shape != stem.weight.shape:
                raise ValueError(
                    f"PatchWhitening: the data gives {tuple(filters.shape)} whitening filters but "
                    f"the stem conv is {tuple(stem.weight.shape)}; set stem_width to "
                    f"{filters.shape[0]}"
                )
            stem.weight.copy_(filters)
            net.stem_whitened.fill_(True)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        bias = self._net(pl_module).stem_conv.bias
        if bias is not None:
            bias.requires_grad_(trainer.current_epoch < self.bias_epochs)
