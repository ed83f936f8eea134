"""`trickbench data`: a folder of images -> cifar-10-batches-py/ that the DataModule reads pixel for pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trickbench.datamodules import CIFAR10DataModule
from trickbench.scripts.cifar_folder import CLASSES, FolderError, build, main, verify


def image_folder(root: Path, per_class: int = 3, size: int = 32) -> dict[str, dict[bytes, int]]:
    """PNG images (lossless) with distinct random pixels; returns split -> {pixel bytes: label}."""
    rng = np.random.default_rng(0)
    truth: dict[str, dict[bytes, int]] = {}
    for split in ("train", "test"):
        truth[split] = {}
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / name / f"{i:04d}.png")
                truth[split][arr.transpose(2, 0, 1).tobytes()] = label
    return truth


def test_built_batches_read_back_pixel_for_pixel_with_their_labels(tmp_path):
    truth = image_folder(tmp_path / "images")
    assert main(["build", str(tmp_path / "images"), str(tmp_path / "data")]) == 0
    dm = CIFAR10DataModule(str(tmp_path / "data"), val_size=0, accept_nonoriginal=True, flip=False)
    with pytest.warns(UserWarning, match="not the original release"):
        dm.setup("fit")
    for split in ("train", "test"):
        x, y = dm.splits[split]
        assert len(x) == 30
        got = {img.numpy().tobytes(): int(lab) for img, lab in zip(x, y)}
        assert got == truth[split]
    assert not torch.equal(dm.splits["train"][1][:10], torch.arange(10).repeat_interleave(3)[:10])  # shuffled
    assert all("not the original" in line for line in verify(tmp_path / "data"))


def test_bad_folders_are_one_error_and_write_nothing(tmp_path):
    image_folder(tmp_path / "images")
    (tmp_path / "images" / "test" / "truck" / "0000.png").unlink()
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "images" / "test" / "truck" / "0000.png")
    with pytest.raises(FolderError, match="28x28, not a 32x32"):
        build(tmp_path / "images", tmp_path / "data")
    assert not (tmp_path / "data").exists()
    for p in (tmp_path / "images" / "train" / "cat").iterdir():
        p.unlink()
    (tmp_path / "images" / "train" / "cat").rmdir()
    assert main(["build", str(tmp_path / "images"), str(tmp_path / "data")]) == 2
    with pytest.raises(FolderError, match="missing"):
        verify(tmp_path / "nothing")
