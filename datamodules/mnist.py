"""MNIST from the standard torchvision layout `<data_dir>/MNIST/raw/*-ubyte`, decoded once to uint8."""

from __future__ import annotations

import struct
from pathlib import Path

import torch

from trickbench.datamodules.augment import batch_hflip, batch_random_crop, to_float
from trickbench.datamodules.integrity import DatasetError, check_same_length, tensor_from_buffer
from trickbench.datamodules.released import ReleasedDataModule

# md5 of the uncompressed LeCun files (torchvision only lists the .gz archives).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


def read_idx(path: Path) -> torch.Tensor:
    """Parse an idx1 (labels) or idx3 (images) file into a uint8 tensor."""
    buf = path.read_bytes()
    if len(buf) < 8:
        raise DatasetError(f"MNIST: {path} is truncated ({len(buf)} bytes). Delete it and re-download.")
    magic, n = struct.unpack(">II", buf[:8])
    if magic == 2049:
        return tensor_from_buffer(buf, 8, (n,), path, "MNIST")
    if magic == 2051 and len(buf) >= 16:
        rows, cols = struct.unpack(">II", buf[8:16])
        return tensor_from_buffer(buf, 16, (n, 1, rows, cols), path, "MNIST")
    raise DatasetError(f"MNIST: {path} is not an idx file (magic {magic}). Delete it and re-download.")


class MNISTDataModule(ReleasedDataModule):
    """60k train (minus a seeded `val_size` hold-out) / 10k official test; x is (1, 28, 28).

    Args:
        data_dir: folder that holds the dataset's release folder (MNIST/raw/)
        val_size: images held out of the training set (seeded) for validation; 0 for none
        download: fetch the release through torchvision when a file is absent (needs network)
        accept_nonoriginal: use files that differ from the release (a re-encoded copy); their fingerprint is recorded
            with the run
        crop_padding: pixels of padding before a random 28x28 crop (0: no crop)
        flip: random horizontal flip
        normalize: per-channel normalisation; false gives intensities in [0, 1] (autoencoders, GANs)
        batch_size: training batch size (per device)
        eval_batch_size: validation/test batch size
        seed: seed of the split, the shuffling and the augmentation stream; null (default): the run's `seed_everything`
        device_resident: keep every split on the training device, so batches never cross the host-device bus
    """

    dataset = "MNIST"
    mean_std = (MNIST_MEAN, MNIST_STD)
    missing_hint = (
        "Set download=True to fetch it, or place the four uncompressed idx files "
        "(train-images-idx3-ubyte, ...) in <data_dir>/MNIST/raw/."
    )

    def __init__(
        self,
        data_dir: str = "data",
        val_size: int = 5000,
        download: bool = False,
        accept_nonoriginal: bool = False,
        crop_padding: int = 0,
        flip: bool = False,
        normalize: bool = True,
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
        self.crop_padding, self.flip = crop_padding, flip
        self.dims = (1, 28, 28)
        self.num_classes = 10

    @property
    def folder(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def expected_files(self) -> dict[str, str]:
        return MNIST_MD5

    def download_files(self, root: Path) -> None:
        from torchvision.datasets import MNIST

        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)

    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.verify_files()
        x_train, y_train = self._read_split("train")
        x_test, y_test = self._read_split("t10k")
        tr, va = self.split_train(len(x_train))
        return {
            "train": (x_train[tr], y_train[tr].long()),
            "val": (x_train[va], y_train[va].long()),
            "test": (x_test, y_test.long()),
        }

    def _read_split(self, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = (self.folder / f"{prefix}-images-idx3-ubyte", self.folder / f"{prefix}-labels-idx1-ubyte")
        x, y = read_idx(images), read_idx(labels)
        check_same_length(x, y, images, labels, "MNIST")
        return x, y

    def train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = batch_random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = batch_hflip(x, generator)
        return to_float(x, self.mean, self.std)
