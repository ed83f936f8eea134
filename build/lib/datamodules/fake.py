"""Tiny learnable datasets written in the real on-disk formats (LeCun idx files, CIFAR-10 python pickles).

For tests, the quickstart notebook and smoke runs on a machine without the real data: the DataModules read
them exactly as they read the originals (with `accept_nonoriginal=True`, since the checksums differ).
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a LeCun idx file: idx1 for labels (N,), idx3 for images (N, 28, 28)."""
    if array.ndim == 1:
        header = struct.pack(">II", 2049, len(array))
    else:
        header = struct.pack(">IIII", 2051, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_fake_mnist(root: Path, n_train: int = 256, n_test: int = 64, seed: int = 0) -> Path:
    """Class k draws a bright bar at row 2k+4, so the data are learnable."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4 : 2 * k + 6, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def make_fake_cifar(root: Path, per_batch: int = 64, n_test: int = 64, seed: int = 0) -> Path:
    """torchvision's python layout: data_batch_1..5 + test_batch pickles; class k tints channel k % 3."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        labels = rng.integers(0, 10, n)
        data = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.uint8)
        for i, k in enumerate(labels):
            data[i, k % 3, (k // 3) * 8 : (k // 3) * 8 + 8, :] = 250
        entry = {b"data": data.reshape(n, -1), b"labels": labels.tolist(), b"batch_label": name.encode()}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)
    return root
