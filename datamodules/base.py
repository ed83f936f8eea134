"""The shared data path: whole splits held as tensors, batches cut by indexing.

`TensorLoader` replaces Dataset + DataLoader for data that fits in memory: a batch is one
`index_select`, with no per-sample Python and no worker processes. It shards across DDP
ranks itself (Lightning adds no DistributedSampler to an iterable that is not a DataLoader)
and is stateful, so a mid-epoch checkpoint resumes at the exact batch.

`TensorDataModule` owns the splits, builds one loader per split and applies per-batch
transforms in `on_after_batch_transfer`, i.e. on whatever device the batch now lives on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import LightningDataModule

from trickbench import compat
from trickbench.seeding import derive_seed


class TensorLoader:
    """Iterate `(x[idx], y[idx])` batches; one epoch = one seeded permutation shared by all ranks.

    Train (`shuffle=True, drop_last=True`): every rank gets `len(x) // world_size // batch_size`
    full batches of disjoint samples. Eval (`shuffle=False, drop_last=False`): rank r reads
    samples r, r+world, r+2*world, ... so nothing is lost or seen twice.

    Args:
        x: inputs of the whole split, first dimension the examples
        y: targets of the whole split
        batch_size: examples per batch (per rank)
        shuffle: a new seeded permutation every epoch (else storage order)
        drop_last: drop the last incomplete batch, and give every rank the same number of batches
        seed: seed of the permutations (epoch e: a generator seeded with seed * 100003 + e)
        rank: this process's rank
        world_size: number of ranks sharing the split
        epoch_fn: returns the current epoch (the Trainer's), or None to count epochs itself
        consumed_fn: returns how many batches of this epoch were already taken (mid-epoch resume), or None
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_fn: Callable[[], int] | None = None,
        consumed_fn: Callable[[], int] | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch_fn = epoch_fn
        # Batches of this epoch the training loop has taken. Lightning's fetcher pre-fetches one batch
        # ahead, so the count this loader has *yielded* overshoots by one mid-epoch (a resume would skip it).
        self.consumed_fn = consumed_fn
        self._epoch = 0  # used when no epoch_fn is given
        self._start_batch = 0  # set by load_state_dict to resume mid-epoch
        self._batches_done = 0
        self._active_epoch = 0

    def _indices(self, epoch: int) -> torch.Tensor:
        n = len(self.x)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        if self.drop_last:
            order = order[: n // self.world_size * self.world_size]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        per_rank = len(self._indices(0))
        if self.drop_last:
            return per_rank // self.batch_size
        return -(-per_rank // self.batch_size)

    def current_epoch(self) -> int:
        return self.epoch_fn() if self.epoch_fn is not None else self._epoch

    def __iter__(self):
        epoch = self._active_epoch = self.current_epoch()
        if self.epoch_fn is None:
            self._epoch += 1
        idx = self._indices(epoch).to(self.x.device)
        start, self._start_batch = self._start_batch, 0
        for b in range(start, len(self)):
            self._batches_done = b + 1
            sel = idx[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.x.index_select(0, sel), self.y.index_select(0, sel)
        self._batches_done = 0

    # Lightning saves/restores these for stateful train iterables (mid-epoch resume).
    def state_dict(self) -> dict[str, Any]:
        done = self._batches_done  # 0 once the epoch's iterator is exhausted
        if self.consumed_fn is not None:
            done = min(done, self.consumed_fn())
        if done >= len(self):  # epoch fully taken (Lightning stops at len() without exhausting us)
            done = 0
        return {"epoch": self._active_epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch = state["epoch"]
        self._start_batch = state["batches_done"]


class TensorDataModule(LightningDataModule):
    """Base for all DataModules here: splits as tensors, batch contract `(x, y)`.

    Subclasses fill `self.splits = {"train": (x, y), "val": ..., "test": ...}` in `setup`
    and may override `train_transform` / `eval_transform` (batched, device-agnostic).
    Attributes every DataModule declares: `dims` (shape of one x), `num_classes`
    (None for regression), `fingerprint` (id of the exact data read, recorded per run).

    Args:
        batch_size: training batch size (per device)
        eval_batch_size: validation/test batch size
        seed: seed of the split, the shuffling and the augmentation stream; null (default): the run's `seed_everything`
        device_resident: keep every split on the training device, so batches never cross the host-device bus
    """

    dims: tuple[int, ...] = ()
    num_classes: int | None = None

    def __init__(
        self, batch_size: int = 128, eval_batch_size: int = 1024, seed: int | None = None, device_resident: bool = False
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        # None: the training CLI passes the run's seed first (trickbench.lightning_cli.follow_run_seed)
        self.seed = 0 if seed is None else seed
        # device_resident: copy each split to the training device once, so a batch never crosses PCIe.
        self.device_resident = device_resident
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.fingerprint: str = ""
        self._aug_gen = torch.Generator()

    # --- transforms (override) ---------------------------------------------------------------
    def train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.eval_transform(x)

    def eval_transform(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def sample_train_images(self, n: int) -> torch.Tensor:
        """The first `n` training images as the model sees them at test time (for data-dependent inits)."""
        return self.eval_transform(self._split("train")[0][:n])

    # --- loaders ------------------------------------------------------------------------------
    def _split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self.splits:
            raise RuntimeError(f"{type(self).__name__} has no '{name}' split; call setup() first")
        x, y = self.splits[name]
        if self.device_resident and self.trainer is not None:
            device = self.trainer.strategy.root_device
            if x.device != device:
                x, y = x.to(device), y.to(device)
                self.splits[name] = (x, y)
        return x, y

    def _loader(self, name: str, train: bool) -> TensorLoader:
        x, y = self._split(name)
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        epoch_fn = (lambda: self.trainer.current_epoch) if (train and self.trainer) else None
        consumed_fn = (lambda: compat.epoch_batches_taken(self.trainer)) if epoch_fn else None
        return TensorLoader(
            x,
            y,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train,
            seed=self.seed,
            rank=rank,
            world_size=world,
            epoch_fn=epoch_fn,
            consumed_fn=consumed_fn,
        )

    def train_dataloader(self) -> TensorLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> TensorLoader | list:
        return self._loader("val", train=False) if len(self.splits.get("val", ((), ()))[0]) else []

    def test_dataloader(self) -> TensorLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> TensorLoader:
        return self._loader("test", train=False)

    # --- setup: subclasses implement build_splits -------------------------------------------------
    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:  # decode once per process, whatever the stage
            self.splits = self.build_splits()

    # --- per-batch transforms, on the batch's device --------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        x, y = batch
        if self.trainer is not None and self.trainer.training:
            # Augmentation stream of this (rank, batch number): identical after a resume, distinct per rank.
            batch_no = compat.batch_index(self.trainer)  # restored from checkpoints
            self._aug_gen.manual_seed(derive_seed(self.seed, "augment", self.trainer.global_rank, batch_no))
            return self.train_transform(x, self._aug_gen), y
        return self.eval_transform(x), y

    # The augmentation stream is re-derived every batch (above), so only the data id is checkpointed.
    def state_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def seeded_split(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint (train_idx, val_idx) from a seeded permutation of range(n)."""
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in [0, {n}), got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:], perm[:val_size]
