"""Save image grids (reconstructions, generated samples) as PNGs in the run dir and log them to W&B.

Talks to the module through one hook: `pl_module.image_grids(x) -> {name: (N, C, H, W) in [0, 1]}`,
where `x` is a fixed batch of real validation images (the first batch, clipped to `num_images`).
Implemented by `AutoEncoder`, `VAE` and `GAN`. Files: `<run_dir>/samples/<name>_epoch<EEE>.png`
plus `<name>.png` (the latest), so a finished run always has one up-to-date grid per name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from torchvision.utils import make_grid, save_image


class SampleGrids(Callback):
    """Image grids of a fixed validation batch, saved and logged every few epochs.

    Args:
        every_n_epochs: save a grid after every n-th validation epoch (>= 1)
        num_images: images in each grid (the first ones of the first validation batch)
        nrow: images per row of a grid
        subdir: folder of the run directory the PNGs go to
    """

    def __init__(self, every_n_epochs: int = 1, num_images: int = 32, nrow: int = 8, subdir: str = "samples") -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs, self.num_images, self.nrow, self.subdir = every_n_epochs, num_images, nrow, subdir
        self._fixed: torch.Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not callable(getattr(pl_module, "image_grids", None)):
            raise TypeError(
                f"SampleGrids needs a module with `image_grids(x) -> dict[str, Tensor]`; "
                f"{type(pl_module).__name__} has none. Remove the callback from this config."
            )

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self._fixed is None and batch_idx == 0:  # the first val batch, already on device and transformed
            self._fixed = batch[0][: self.num_images].detach().clone()

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0 or trainer.current_epoch + 1 == trainer.max_epochs
        if trainer.sanity_checking or self._fixed is None or not due:
            return
        was_training = pl_module.training
        pl_module.eval()  # BatchNorm in eval mode: grids show what the saved model produces
        grids = pl_module.image_grids(self._fixed.to(pl_module.device))
        pl_module.train(was_training)
        if trainer.is_global_zero:
            self.write(trainer, grids)

    def write(self, trainer: Trainer, grids: dict[str, torch.Tensor]) -> None:
        folder = Path(trainer.default_root_dir) / self.subdir
        folder.mkdir(parents=True, exist_ok=True)
        for name, images in grids.items():
            grid = make_grid(images.float().clamp(0, 1).cpu(), nrow=self.nrow, padding=2, pad_value=1.0)
            path = folder / f"{name}_epoch{trainer.current_epoch:03d}.png"
            save_image(grid, path)
            shutil.copyfile(path, folder / f"{name}.png")
            for logger in trainer.loggers:  # W&B images only where W&B is the logger; CSV has no images
                if isinstance(logger, WandbLogger):
                    logger.log_image(key=f"samples/{name}", images=[grid], step=trainer.global_step)
