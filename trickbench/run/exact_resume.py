"""What a bitwise-exact resume needs beyond Lightning's checkpoint (one default callback).

1. Global RNG streams. Drop-path masks, dropout and mixup/CutMix (torchvision's v2.MixUp/CutMix
   draw from the global torch RNG) consume global random state, which Lightning does not
   checkpoint; and `seed_everything` gives every DDP rank the *same* stream, so rank r's sample i
   is dropped exactly when rank 0's is. Reseeding before every training batch from
   (seed, rank, batch number) fixes both with no state to save.
2. Mid-epoch data position. Lightning 2.6 builds the train loader early when anything reads
   `trainer.estimated_stepping_batches` (OneCycleLR/cosine lengths, warmup) and then never hands it
   the checkpoint's loader state (Lightning issue #20550): a resumed run silently restarts the epoch
   from batch 0. Loading that pending state at `on_train_start` and re-creating the iterator mirrors
   the fix proposed upstream (PR #21765); once Lightning does it, nothing is pending and this is a no-op.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from trickbench import compat
from trickbench.seeding import derive_seed


def reseed_globals(seed: int) -> None:
    """Seed torch (CPU + every initialised accelerator), numpy and `random`.

    Not `torch.manual_seed`: for each accelerator module that is not initialised (CUDA on a CPU run; XPU,
    MTIA on a CUDA run) it queues a lazy seed call together with `traceback.format_stack()`, which is costly
    under Lightning's deep stack, once per training batch. A device the run trains on is initialised before
    the first batch, so seeding only initialised ones draws the same streams.
    """
    torch.default_generator.manual_seed(seed)
    for accel in (torch.cuda, torch.xpu, torch.mtia):
        if accel.is_initialized():
            accel.manual_seed_all(seed)
    torch.mps.manual_seed(seed)  # returns at once when torch has no MPS; no lazy queue
    np.random.seed(seed % 2**32)
    random.seed(seed)


class ExactResume(Callback):
    """Before each training batch, seed torch (CPU + CUDA), numpy and `random` from
    `derive_seed(seed, "global", rank, batch)`; at train start, apply pending loader state.
    seed=None reads `seed_everything`'s value (PL_GLOBAL_SEED), else 0.

    Args:
        seed: base seed of the per-batch streams; null reads seed_everything's value
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        compat.check(trainer)  # the Lightning internals these workarounds use: a clear error if they moved

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        compat.restore_pending_loader_state(trainer)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object, batch_idx: int) -> None:
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", "0"))
        reseed_globals(derive_seed(seed, "global", trainer.global_rank, compat.batch_index(trainer)))
