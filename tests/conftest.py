"""Shared fixtures: tiny datasets written in the real on-disk formats (no network, no real data), and a smoke fit."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(1)  # the suite shares 2 cores; 2-thread torch collapses under contention


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


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    return make_fake_mnist(tmp_path / "data")


@pytest.fixture
def fake_cifar(tmp_path: Path) -> Path:
    return make_fake_cifar(tmp_path / "data")


def subprocess_env(wandb_mode: str = "disabled", **extra: str) -> dict[str, str]:
    """Environment of a CLI subprocess: one torch thread, the W&B mode, the repo and tests/ddp_scripts (callbacks
    the tests inject) on PYTHONPATH, and never this process's WANDB_SERVICE (`callbacks.run_dir.child_environ`)."""
    from callbacks.run_dir import child_environ

    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root / "tests" / "ddp_scripts"), str(root)])
    return child_environ(OMP_NUM_THREADS="1", WANDB_MODE=wandb_mode, PYTHONPATH=path, **extra)


def fit_smoke(cfg: str, data_dir: Path, run_dir: Path, *extra: str):
    """`scripts.train fit` of a repo config on a fake MNIST/CIFAR folder with `configs/trainer/cpu_smoke.yaml`
    (a few CPU steps), a 32-image hold-out and no logger; `extra` are further CLI arguments."""
    from scripts.train import main as train_main

    return train_main(args=["fit", "--config", cfg, "--config", "configs/trainer/cpu_smoke.yaml",
                            "--data.init_args.data_dir", str(data_dir), "--data.init_args.val_size", "32",
                            "--data.init_args.accept_nonoriginal", "true", "--trainer.logger", "false",
                            "--run_dir", str(run_dir), *extra])  # fmt: skip
