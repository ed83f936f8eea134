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
from lightning.pytorch.plugins.io import TorchCheckpointIO

from callbacks.run_record import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` with atomic local saves (remote URLs keep Lightning's own path)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        local_path = LocalFileSystem._strip_protocol(str(path))  # accepts file:// URLs too
        atomic_write(local_path, lambda fh: torch.save(checkpoint, fh))
