"""DataModules on tiny generated files in the real formats: shapes, dtypes, splits, augmentation, errors."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

from trickbench.datamodules import (
    CIFAR10DataModule,
    DatasetError,
    MNISTDataModule,
    SyntheticRegressionDataModule,
    TensorLoader,
)
from trickbench.datamodules.augment import batch_cutout, batch_hflip, batch_random_crop
from trickbench.datamodules.mnist import MNIST_MD5


def _setup(dm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm.setup("fit")
    return dm


def test_mnist_shapes_dtypes_and_split(fake_mnist):
    dm = _setup(MNISTDataModule(str(fake_mnist), val_size=56, accept_nonoriginal=True, batch_size=32))
    x, y = dm.splits["train"]
    assert x.shape == (200, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert len(dm.splits["val"][0]) == 56 and len(dm.splits["test"][0]) == 64
    assert dm.dims == (1, 28, 28) and dm.num_classes == 10 and len(dm.fingerprint) == 16
    xb, yb = next(iter(dm.train_dataloader()))
    xb = dm.eval_transform(xb)
    assert xb.shape == (32, 1, 28, 28) and xb.dtype == torch.float32
    assert abs(float(xb.mean())) < 3  # normalised scale


def test_split_is_seeded_and_disjoint(fake_mnist):
    a = _setup(MNISTDataModule(str(fake_mnist), val_size=50, accept_nonoriginal=True, seed=3))
    b = _setup(MNISTDataModule(str(fake_mnist), val_size=50, accept_nonoriginal=True, seed=3))
    c = _setup(MNISTDataModule(str(fake_mnist), val_size=50, accept_nonoriginal=True, seed=4))
    assert torch.equal(a.splits["val"][0], b.splits["val"][0])
    assert not torch.equal(a.splits["val"][0], c.splits["val"][0])
    rows = {bytes(t.numpy()) for t in a.splits["train"][0]} | {bytes(t.numpy()) for t in a.splits["val"][0]}
    assert len(rows) == 256  # train and val together are exactly the 256 generated images


def test_cifar_batches_keep_each_image_with_its_label_through_augmentation(fake_cifar):
    dm = _setup(CIFAR10DataModule(str(fake_cifar), val_size=20, accept_nonoriginal=True, batch_size=16, crop_padding=0))
    x_all, y_all = dm.splits["train"]
    assert x_all.shape == (300, 3, 32, 32)
    xb, yb = next(iter(dm.train_dataloader()))
    # each batch image found in the stored split (the fake images are random, so rows are unique): its label
    # must be the one stored with it
    rows = [int((x_all.flatten(1) == xb[i].flatten()).all(1).nonzero().squeeze()) for i in range(len(xb))]
    assert rows != sorted(rows)  # shuffled, so a label left in storage order would not match
    assert torch.equal(yb, y_all[rows])
    # augmentation (flip only here) maps image i to a view of image i, never of another sample
    out = dm.train_transform(xb, torch.Generator().manual_seed(0))
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.float32
    plain, mirrored = dm.eval_transform(xb), dm.eval_transform(xb.flip(-1))
    same = [torch.allclose(out[i], plain[i]) or torch.allclose(out[i], mirrored[i]) for i in range(len(xb))]
    assert all(same)
    assert any(not torch.allclose(out[i], plain[i]) for i in range(len(xb)))  # some were flipped


def test_cifar_checksum_mismatch_is_an_error_without_opt_in(fake_cifar, capsys):
    with pytest.raises(DatasetError, match="checksum mismatch.*data_batch_1.*accept_nonoriginal"):
        CIFAR10DataModule(str(fake_cifar)).setup("fit")
    dm = CIFAR10DataModule(str(fake_cifar), val_size=10, accept_nonoriginal=True)
    dm.preflight()  # what fit runs first: the same copy is noted once per process
    dm.setup("fit")
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "original release" in ln]
    assert len(notes) == 1  # one line for the copy, not one per file (there were six) nor per check
    assert notes[0].startswith("note: CIFAR-10: 6 of 6 files") and dm.fingerprint in notes[0]


def test_missing_dataset_names_file_and_remedy(tmp_path):
    with pytest.raises(DatasetError, match=r"missing file .*train-images-idx3-ubyte.*download=True"):
        MNISTDataModule(str(tmp_path)).setup("fit")
    with pytest.raises(DatasetError, match=r"missing file .*data_batch_1.*trickbench data build"):
        CIFAR10DataModule(str(tmp_path)).setup("fit")


def test_truncated_idx_file(fake_mnist):
    path = fake_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="truncated"):
        _setup(MNISTDataModule(str(fake_mnist), accept_nonoriginal=True, val_size=10))


def test_correct_checksums_pass_silently(fake_mnist, monkeypatch):
    from trickbench.datamodules import integrity

    found = {n: integrity.md5sum(fake_mnist / "MNIST" / "raw" / n) for n in MNIST_MD5}
    monkeypatch.setattr("trickbench.datamodules.mnist.MNIST_MD5", found)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MNISTDataModule(str(fake_mnist), val_size=10).setup("fit")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo should-never-run",))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "evil"])
def test_corrupt_cifar_pickle(fake_cifar, damage):
    path = fake_cifar / "cifar-10-batches-py" / "data_batch_2"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "garbage":
        path.write_bytes(b"not a pickle at all" * 10)
    else:  # a pickle that would run code when loaded
        path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(DatasetError, match="data_batch_2"):
        _setup(CIFAR10DataModule(str(fake_cifar), accept_nonoriginal=True, val_size=10))


def test_synthetic_regression_is_seeded_and_fits_function():
    a = _setup(SyntheticRegressionDataModule(input_dim=4, function="linear", noise=0.0, seed=1))
    b = _setup(SyntheticRegressionDataModule(input_dim=4, function="linear", noise=0.0, seed=1))
    x, y = a.splits["train"]
    assert torch.equal(x, b.splits["train"][0]) and y.shape == (4096, 1)
    # noise-free linear data: least squares recovers y exactly
    w = torch.linalg.lstsq(x, y).solution
    assert torch.allclose(x @ w, y, atol=1e-4)
    assert a.num_classes is None and a.dims == (4,)


def test_loader_shards_are_disjoint_and_complete():
    x = torch.arange(100).float()
    for shuffle, drop_last in ((True, True), (False, False)):
        kwargs = {"batch_size": 8, "shuffle": shuffle, "drop_last": drop_last, "seed": 5}
        seen = [torch.cat([b[1] for b in TensorLoader(x, x.long(), rank=r, world_size=3, **kwargs)]) for r in range(3)]
        union = torch.cat(seen)
        assert len(set(union.tolist())) == len(union)  # no sample on two ranks
        # train keeps whole batches of the 33 samples per rank (4 x 8); eval keeps every sample exactly once
        assert len(union) == (3 * 4 * 8 if drop_last else 100)
        if drop_last:  # every rank takes the same number of steps (DDP would hang otherwise)
            assert [len(TensorLoader(x, x.long(), rank=r, world_size=3, **kwargs)) for r in range(3)] == [4, 4, 4]


def test_loader_epochs_reshuffle_deterministically():
    x, y = torch.arange(64).float()[:, None], torch.arange(64)
    loader = TensorLoader(x, y, 64, shuffle=True, drop_last=True, seed=1)
    e0, e1 = next(iter(loader))[1], next(iter(loader))[1]
    assert not torch.equal(e0, e1)
    again = TensorLoader(x, y, 64, shuffle=True, drop_last=True, seed=1)
    assert torch.equal(next(iter(again))[1], e0)


def test_random_crop_is_a_shifted_window():
    x = torch.arange(2 * 1 * 6 * 6).view(2, 1, 6, 6).float() + 1
    out = batch_random_crop(x, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2,) * 4)
    for i in range(2):
        windows = [padded[i, :, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_flip_rate_and_cutout_area():
    x = torch.rand(2000, 1, 4, 4)
    flipped = batch_hflip(x, torch.Generator().manual_seed(0))
    rate = (flipped != x).flatten(1).any(1).float().mean()
    assert 0.45 < float(rate) < 0.55
    ones = torch.ones(500, 1, 32, 32)
    cut = batch_cutout(ones, 8, torch.Generator().manual_seed(0))
    zeros = (cut == 0).flatten(1).sum(1).float()
    assert zeros.max() == 64 and zeros.min() >= 16  # full square inside, clipped at the borders
