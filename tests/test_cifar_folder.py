"""`trickbench data`: a folder of images -> cifar-10-batches-py/ that the DataModule reads pixel for pixel."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trickbench.datamodules import CIFAR10DataModule
from trickbench.datamodules.cifar10 import CIFAR10_MD5, read_batch
from trickbench.datamodules.integrity import fingerprint, md5sum
from trickbench.scripts.cifar_folder import CLASSES, FolderError, build, copy_fingerprint, main, verify


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


def test_built_batches_read_back_pixel_for_pixel_with_their_labels(tmp_path, capsys):
    truth = image_folder(tmp_path / "images")
    assert main(["build", str(tmp_path / "images"), str(tmp_path / "data")]) == 0
    dm = CIFAR10DataModule(str(tmp_path / "data"), val_size=0, accept_nonoriginal=True, flip=False)
    dm.setup("fit")
    assert "not the original release" in capsys.readouterr().err  # one note
    for split in ("train", "test"):
        x, y = dm.splits[split]
        assert len(x) == 30
        got = {img.numpy().tobytes(): int(lab) for img, lab in zip(x, y)}
        assert got == truth[split]
    assert not torch.equal(dm.splits["train"][1][:10], torch.arange(10).repeat_interleave(3)[:10])  # shuffled
    lines, ok = verify(tmp_path / "data")
    assert not ok and all("not the original" in line for line in lines)


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


def jpeg_folder(root: Path, per_class: int = 4) -> list[int]:
    """A JPEG rendition's layout: {train,test}/<class>/NNNN.jpg plus train_labels.txt, the class of every training
    image in an (interleaved) original order; returns that order."""
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    root / split / name / f"{i:04d}.jpg", quality=75
                )
    order = [int(c) for c in rng.permutation(np.repeat(np.arange(10), per_class))]
    (root / "train_labels.txt").write_text("\n".join(map(str, order)) + "\n")
    return order


def reference_batches(images: Path, dest: Path, order: list[int]) -> Path:
    """The rendition's own layout, written independently of the builder: training image i is the next JPEG of class
    order[i]; the test set class by class; pickles (protocol 4) of batch_label, labels, data (N, 3072), filenames."""
    decode = lambda p: np.asarray(Image.open(p).convert("RGB"))  # noqa: E731
    seen = [0] * 10
    train = []
    for c in order:
        train.append(decode(images / "train" / CLASSES[c] / f"{seen[c]:04d}.jpg"))
        seen[c] += 1
    per = len(order) // 10
    test = [decode(images / "test" / CLASSES[c] / f"{n:04d}.jpg") for c in range(10) for n in range(per)]
    out = dest / "cifar-10-batches-py"
    out.mkdir(parents=True)

    def dump(name: str, x: list, y: list, label: str) -> None:
        arr = np.stack(x)
        entry = {
            "batch_label": label,
            "labels": list(map(int, y)),
            "data": arr.transpose(0, 3, 1, 2).reshape(len(arr), 3072).copy(),
            "filenames": [f"{name}_{i:05d}.png" for i in range(len(arr))],
        }
        (out / name).write_bytes(pickle.dumps(entry, protocol=4))

    size = len(order) // 5
    for b in range(5):
        s = slice(b * size, (b + 1) * size)
        dump(f"data_batch_{b + 1}", train[s], order[s], f"training batch {b + 1} of 5 (JPEG rendition)")
    dump(
        "test_batch",
        test,
        [c for c in range(10) for _ in range(per)],
        "testing batch 1 of 1 (JPEG rendition, class-major order)",
    )
    meta = {"num_cases_per_batch": 10000, "label_names": CLASSES, "num_vis": 3072}
    (out / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    return out


def test_the_builder_reproduces_a_renditions_batch_files_byte_for_byte(tmp_path, capsys):
    """With the rendition's train_labels.txt the builder writes the original training order, and the very bytes of
    the rendition's batch files: the same fingerprint a run on that copy recorded. Building again gives it again."""
    order = jpeg_folder(tmp_path / "images")
    ref = reference_batches(tmp_path / "images", tmp_path / "ref", order)
    assert main(["build", str(tmp_path / "images"), str(tmp_path / "a")]) == 0
    assert main(["build", str(tmp_path / "images"), str(tmp_path / "b")]) == 0
    for name in [*CIFAR10_MD5, "batches.meta"]:
        assert md5sum(tmp_path / "a" / "cifar-10-batches-py" / name) == md5sum(ref / name), name
    want = fingerprint({n: md5sum(ref / n) for n in CIFAR10_MD5})
    assert copy_fingerprint(tmp_path / "a") == copy_fingerprint(tmp_path / "b") == want
    dm = CIFAR10DataModule(str(tmp_path / "a"), val_size=0, accept_nonoriginal=True)
    dm.setup("fit")
    assert "not the original release" in capsys.readouterr().err  # one note
    assert dm.fingerprint == want  # what the run records
    labels = torch.cat([read_batch(tmp_path / "a" / "cifar-10-batches-py" / f"data_batch_{i}")[1] for i in range(1, 6)])
    assert labels.tolist() == order  # the original order, as the order file gives it


def test_verify_exits_1_for_a_copy_and_0_when_its_fingerprint_is_accepted(tmp_path, capsys):
    jpeg_folder(tmp_path / "images", per_class=1)
    build(tmp_path / "images", tmp_path / "data")
    fp = copy_fingerprint(tmp_path / "data")
    assert main(["verify", str(tmp_path / "data")]) == 1
    assert f"fingerprint {fp}: not the original release" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "data"), "--accept", "0123456789abcdef"]) == 1  # another rendition's
    assert main(["verify", str(tmp_path / "data"), "--accept", fp]) == 0


def test_an_order_file_that_does_not_match_the_images_is_one_error_and_writes_nothing(tmp_path):
    jpeg_folder(tmp_path / "images", per_class=2)
    (tmp_path / "images" / "train_labels.txt").write_text("0 1 2\n")
    with pytest.raises(FolderError, match=r"lists \[1, 1, 1, 0, .*per class but .* holds \[2, 2"):
        build(tmp_path / "images", tmp_path / "data")
    assert not (tmp_path / "data").exists()
