"""Checkpoints written atomically: a crash mid-save never leaves a truncated `last.ckpt`.

Lightning's `TorchCheckpointIO` writes through an fsspec transaction whose temp file lives in
`$TMPDIR`; when that is another filesystem than the run directory (node-local /tmp, checkpoints
on NFS/Lustre) the commit is `shutil.move` = copy into the final path, which a kill can cut short,
and nothing is fsynced. Here the temp file sits next to the target, is fsynced, then `os.replace`d.
"""

from __future__ import annotations

from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from trickbench.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` with atomic local saves (remote URLs keep Lightning's own path)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        local_path = LocalFileSystem._strip_protocol(str(path))  # accepts file:// URLs too
        atomic_write(local_path, lambda fh: torch.save(checkpoint, fh))


class LastCheckpoint(ModelCheckpoint):
    """The run's own checkpoint, one file: `<run_dir>/checkpoints/last.ckpt`, rewritten at every epoch end (and
    by `every_n_train_steps` when set). What `fit --ckpt_path last` resumes from and what `trickbench.scripts.ensemble`,
    `trickbench.scripts.score_gan` and `test` load. A `ModelCheckpoint` keeping its one latest checkpoint under the name
    `last` (save_top_k 1, no monitor, no version counter, so it overwrites itself; not `save_last` with
    save_top_k 0, which Lightning writes only when a top-k file was written, i.e. never before the end of fit);
    its own class, so a configured `ModelCheckpoint` (e.g. configs/trainer/keep_epoch_checkpoints.yaml) has a
    distinct state key. The CLI drops it from a run that configures another ModelCheckpoint.

    Args:
        dirpath: folder of last.ckpt; null is <run_dir>/checkpoints
        every_n_train_steps: also rewrite it every this many optimizer steps (null: only at epoch ends)
        every_n_epochs: rewrite it every this many epochs (null: every epoch)
    """

    def __init__(
        self, dirpath: str | None = None, every_n_train_steps: int | None = None, every_n_epochs: int | None = None
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            every_n_train_steps=every_n_train_steps,
            every_n_epochs=every_n_epochs,
        )
        self.saves_by_step = every_n_train_steps is not None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        # ModelCheckpoint tests its step and time rules after every batch; saving by epoch only, there is none
        if self.saves_by_step:
            super().on_train_batch_end(trainer, pl_module, *args)
