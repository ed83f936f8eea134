"""MNIST from the standard torchvision layout `<data_dir>/MNIST/raw/*-ubyte`, decoded once to uint8."""

from __future__ import annotations

import struct
from pathlib import Path

import torch

from datamodules.augment import batch_hflip, batch_random_crop, to_float
from datamodules.base import TensorDataModule, seeded_split
from datamodules.integrity import DatasetError, check_files, check_same_length, fingerprint, require_folder, tensor_from_buffer

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


class MNISTDataModule(TensorDataModule):
    """60k train (minus a seeded `val_size` hold-out) / 10k official test; x is (1, 28, 28)."""

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
        seed: int = 0,
        device_resident: bool = False,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, seed, device_resident)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir)
        self.val_size, self.download, self.accept_nonoriginal = val_size, download, accept_nonoriginal
        self.crop_padding, self.flip = crop_padding, flip
        self.mean, self.std = (MNIST_MEAN, MNIST_STD) if normalize else (None, None)
        self.dims = (1, 28, 28)
        self.num_classes = 10

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def prepare_data(self) -> None:
        """Download through torchvision only when allowed and absent (runs on one process)."""
        require_folder(self.raw_dir, "MNIST")
        if self.download and not all((self.raw_dir / f).is_file() for f in MNIST_MD5):
            from torchvision.datasets import MNIST

            try:
                MNIST(str(self.data_dir), train=True, download=True)
                MNIST(str(self.data_dir), train=False, download=True)
            except Exception as err:  # network errors come in many types
                raise DatasetError(
                    f"MNIST: download into {self.raw_dir} failed ({err}). Offline? Copy the four "
                    f"*-ubyte files there by hand (see README, 'Data')."
                ) from err

    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        hint = (
            "Set download=True to fetch it, or place the four uncompressed idx files "
            "(train-images-idx3-ubyte, ...) in <data_dir>/MNIST/raw/."
        )
        found = check_files(self.raw_dir, MNIST_MD5, self.accept_nonoriginal, "MNIST", hint)
        self.fingerprint = fingerprint(found)
        x_train, y_train = self._read_split("train")
        x_test, y_test = self._read_split("t10k")
        tr, va = seeded_split(len(x_train), self.val_size, self.seed)
        return {
            "train": (x_train[tr], y_train[tr].long()),
            "val": (x_train[va], y_train[va].long()),
            "test": (x_test, y_test.long()),
        }

    def _read_split(self, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = (self.raw_dir / f"{prefix}-images-idx3-ubyte", self.raw_dir / f"{prefix}-labels-idx1-ubyte")
        x, y = read_idx(images), read_idx(labels)
        check_same_length(x, y, images, labels, "MNIST")
        return x, y

    def train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = batch_random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = batch_hflip(x, generator)
        return to_float(x, self.mean, self.std)

    def eval_transform(self, x: torch.Tensor) -> torch.Tensor:
        return to_float(x, self.mean, self.std)
