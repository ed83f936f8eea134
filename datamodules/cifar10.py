"""CIFAR-10 from torchvision's python layout `<data_dir>/cifar-10-batches-py/`, decoded once to uint8."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from trickbench.checks import check_range
from trickbench.datamodules.augment import alternating_hflip, batch_cutout, batch_hflip, batch_random_crop, to_float
from trickbench.datamodules.integrity import DatasetError, load_pickle
from trickbench.datamodules.released import ReleasedDataModule
from trickbench.lightning_modules.ops.erasing import random_erasing as erase_boxes

# Same (file, md5) lists torchvision checks; copied so reading never imports the downloader.
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    entry = load_pickle(path, "CIFAR-10")
    if isinstance(entry, dict):  # Python-3 pickles (e.g. the JPEG rendition) have str keys, the original bytes
        entry = {k.encode() if isinstance(k, str) else k: v for k, v in entry.items()}
    try:
        data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry.get(b"labels", entry.get(b"fine_labels")), dtype=np.int64)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DatasetError(
            f"CIFAR-10: {path} does not hold a CIFAR batch ({err}). Delete it and re-download (or rebuild it)."
        ) from err
    if len(data) != len(labels):
        raise DatasetError(f"CIFAR-10: {path} has {len(data)} images but {len(labels)} labels; rebuild it.")
    return torch.from_numpy(data.copy()), torch.from_numpy(labels)


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class CIFAR10DataModule(ReleasedDataModule):
    """50k train (minus a seeded `val_size` hold-out) / 10k official test; x is (3, 32, 32).

    Augmentation (train only, per sample, batched): random crop after `crop_padding` pixels of
    padding (zeros, or `crop_pad_mode: reflect` as airbench94), horizontal flip, optional cutout; then per-channel
    normalisation.
    `alternating_flip=True` (with `flip=True`) replaces the coin-flip mirror by airbench's schedule:
    a seeded half of the training set is stored mirrored, and odd epochs mirror every batch.
    `device_resident=True` keeps every split on the training device (airbench's data path).

    Args:
        data_dir: folder that holds the dataset's release folder (cifar-10-batches-py/)
        val_size: images held out of the training set (seeded) for validation; 0 for none
        download: fetch the release through torchvision when a file is absent (needs network)
        accept_nonoriginal: use files that differ from the release (a re-encoded copy); their fingerprint is recorded
            with the run
        crop_padding: pixels of padding before the random 32x32 crop (0: no crop)
        crop_pad_mode: "zeros" or "reflect" padding for the crop
        flip: random horizontal flip
        alternating_flip: with flip: airbench's alternating mirror schedule instead of coin flips
        cutout: side of a random square zeroed per image (0: off)
        random_erasing: probability that a training image gets one random box (2-33% of its area, aspect ratio
            0.3-3.3) set to the mean colour, after the other augmentations (0: off; Zhong et al., 2020)
        normalize: per-channel normalisation; false gives intensities in [0, 1] (autoencoders, GANs)
        train_subset: > 0: train on only the first N training images (quick CPU runs)
        batch_size: training batch size (per device)
        eval_batch_size: validation/test batch size
        seed: seed of the split, the shuffling and the augmentation stream; null (default): the run's `seed_everything`
        device_resident: keep every split on the training device, so batches never cross the host-device bus
    """

    dataset = "CIFAR-10"
    class_names = CIFAR10_CLASSES
    mean_std = (CIFAR10_MEAN, CIFAR10_STD)
    missing_hint = (
        "Set download=True to fetch it, or build it from a folder of the images with "
        "`trickbench data build IMAGES <data_dir>` (then accept_nonoriginal=True)."
    )

    def __init__(
        self,
        data_dir: str = "data",
        val_size: int = 5000,
        download: bool = False,
        accept_nonoriginal: bool = False,
        crop_padding: int = 4,
        crop_pad_mode: Literal["zeros", "reflect"] = "zeros",
        flip: bool = True,
        alternating_flip: bool = False,
        cutout: int = 0,
        random_erasing: float = 0.0,
        normalize: bool = True,
        train_subset: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 1024,
        seed: int | None = None,
        device_resident: bool = False,
    ) -> None:
        super().__init__(
            data_dir,
            val_size,
            download,
            accept_nonoriginal,
            normalize,
            batch_size,
            eval_batch_size,
            seed,
            device_resident,
        )
        self.save_hyperparameters()
        self.crop_padding, self.flip, self.cutout = crop_padding, flip, cutout
        self.random_erasing = check_range("CIFAR10DataModule", "random_erasing", random_erasing, 0.0, 1.0)
        if crop_pad_mode not in ("zeros", "reflect"):
            raise ValueError(f"CIFAR10DataModule crop_pad_mode must be 'zeros' or 'reflect', got {crop_pad_mode!r}")
        self.crop_pad_mode = "constant" if crop_pad_mode == "zeros" else "reflect"
        self.alternating_flip = alternating_flip
        self.train_subset = train_subset  # >0: keep only the first N training images (quick CPU runs)
        self.dims = (3, 32, 32)
        self.num_classes = 10

    @property
    def folder(self) -> Path:
        return self.data_dir / "cifar-10-batches-py"

    def expected_files(self) -> dict[str, str]:
        return CIFAR10_MD5

    def download_files(self, root: Path) -> None:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=True, download=True)

    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.verify_files()
        parts = [read_batch(self.folder / f"data_batch_{i}") for i in range(1, 6)]
        x_train = torch.cat([p[0] for p in parts])
        y_train = torch.cat([p[1] for p in parts])
        x_test, y_test = read_batch(self.folder / "test_batch")
        tr, va = self.split_train(len(x_train))
        if self.train_subset > 0:
            tr = tr[: self.train_subset]
        x_tr = x_train[tr]
        if self.flip and self.alternating_flip:  # store a seeded half mirrored; train_transform alternates
            x_tr = batch_hflip(x_tr, torch.Generator().manual_seed(self.seed * 7 + 3))
        return {"train": (x_tr, y_train[tr]), "val": (x_train[va], y_train[va]), "test": (x_test, y_test)}

    def train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = batch_random_crop(x, self.crop_padding, generator, self.crop_pad_mode)
        if self.flip and self.alternating_flip:
            x = alternating_hflip(x, self.trainer.current_epoch if self.trainer is not None else 0)
        elif self.flip:
            x = batch_hflip(x, generator)
        x = batch_cutout(x, self.cutout, generator)
        x = to_float(x, self.mean, self.std)
        return erase_boxes(x, generator, self.random_erasing, value=0.0)  # 0: the mean colour once normalised
