"""Build `cifar-10-batches-py/` from a folder of CIFAR-10 images, or check a copy against the original release.

    trickbench data build IMAGES DATA_DIR      # IMAGES/{train,test}/<class name>/*.png|jpg [+ train_labels.txt]
    trickbench data verify DATA_DIR [--accept FINGERPRINT]

`build` writes torchvision's python layout (5 training batches and `test_batch`, pickles of {"batch_label",
"labels", "data": uint8 (N, 3072), "filenames"}, plus `batches.meta`) that `CIFAR10DataModule` reads. Images of a
class are taken in file-name order. The training order: with `IMAGES/train_labels.txt` (the class index of each
training image in the original CIFAR-10 order, whitespace-separated), training image i is the next image of class
`train_labels[i]`, so the batches hold the original order; without it the training set is shuffled with a fixed
seed (`--seed`). The test batch is class by class. The output is a pure function of the images (pickle protocol 4,
fixed key order): the same images give the same bytes, so the same data fingerprint a run records. A re-encoded
copy is not the original release: train with `--data.init_args.accept_nonoriginal true`. Nothing is written
unless every image reads as 32x32 RGB.

`verify` compares each file with the original release and prints the copy's fingerprint; it exits 0 only for the
original release, or for a copy whose fingerprint is given with `--accept` (a known rendition, on purpose).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from trickbench.datamodules.cifar10 import CIFAR10_CLASSES, CIFAR10_MD5
from trickbench.datamodules.integrity import fingerprint, md5sum

CLASSES = list(CIFAR10_CLASSES)
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class FolderError(ValueError):
    pass


def read_split(folder: Path) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """(N, 3, 32, 32) uint8 images and (N,) labels from `folder/<class>/*`, class by class, and the image formats."""
    from PIL import Image

    missing = [c for c in CLASSES if not (folder / c).is_dir()]
    if missing:
        raise FolderError(
            f"{folder} lacks the class folder(s) {', '.join(missing)}: expected {folder}/<class>/ "
            f"for each of {', '.join(CLASSES)}"
        )
    images, labels, formats = [], [], set()
    for label, name in enumerate(CLASSES):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise FolderError(f"{folder / name} holds no images ({', '.join(sorted(SUFFIXES))})")
        for path in files:
            with Image.open(path) as im:
                formats.add(str(im.format))
                arr = np.asarray(im.convert("RGB"))
            if arr.shape != (32, 32, 3):
                raise FolderError(f"{path} is {arr.shape[1]}x{arr.shape[0]}, not a 32x32 CIFAR-10 image")
            images.append(arr.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), formats


PROTOCOL = 4  # fixed, so the bytes do not change with the Python version's default protocol
ORDER_FILE = "train_labels.txt"


def write_pickle(path: Path, obj: object) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=PROTOCOL)
    tmp.replace(path)


def write_batch(path: Path, data: np.ndarray, labels: np.ndarray, name: str) -> None:
    entry = {
        "batch_label": name,
        "labels": [int(v) for v in labels],
        "data": np.ascontiguousarray(data.reshape(len(data), -1)).copy(),
        "filenames": [f"{path.name}_{i:05d}.png" for i in range(len(data))],
    }
    write_pickle(path, entry)


def training_order(images: Path, labels: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """Indices into the class-by-class training images, and how they are ordered (for the batch labels):
    the original order from `train_labels.txt` when the folder has one, else a seeded shuffle."""
    path = images / ORDER_FILE
    if not path.is_file():
        return np.random.default_rng(seed).permutation(len(labels)), f", shuffled with seed {seed}"
    try:
        sequence = np.asarray([int(v) for v in path.read_text().split()], dtype=np.int64)
    except ValueError as err:
        raise FolderError(f"{path}: expected class indices 0-9 separated by whitespace ({err})") from None
    counts, have = np.bincount(sequence, minlength=10), np.bincount(labels, minlength=10)
    if len(counts) != 10 or sequence.min(initial=0) < 0 or not np.array_equal(counts, have):
        raise FolderError(
            f"{path} lists {counts.tolist()} images per class but {images / 'train'} holds {have.tolist()}: "
            f"the order file must name the class of every training image exactly once"
        )
    starts = np.concatenate([[0], np.cumsum(have)[:-1]])  # first index of each class in class-by-class order
    taken = np.zeros(10, dtype=np.int64)
    order = np.empty(len(sequence), dtype=np.int64)
    for i, c in enumerate(sequence):  # the next image of class c, in file-name order
        order[i] = starts[c] + taken[c]
        taken[c] += 1
    return order, ""


def build(images: Path, data_dir: Path, seed: int = 0) -> Path:
    x_train, y_train, formats = read_split(images / "train")
    x_test, y_test, test_formats = read_split(images / "test")  # read everything before writing anything
    order, how = training_order(images, y_train, seed)
    x_train, y_train = x_train[order], y_train[order]
    kind = "/".join(sorted(formats | test_formats)) + " rendition"
    out = data_dir / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(x_train)), 5), start=1):
        write_batch(out / f"data_batch_{i}", x_train[chunk], y_train[chunk], f"training batch {i} of 5 ({kind}{how})")
    write_batch(out / "test_batch", x_test, y_test, f"testing batch 1 of 1 ({kind}, class-major order)")
    write_pickle(out / "batches.meta", {"num_cases_per_batch": 10000, "label_names": CLASSES, "num_vis": 3072})
    return out


def copy_fingerprint(data_dir: Path) -> str:
    """The data fingerprint a run on this copy records (`trickbench.datamodules.integrity.fingerprint`)."""
    folder = data_dir / "cifar-10-batches-py"
    return fingerprint({name: md5sum(folder / name) for name in CIFAR10_MD5})


def verify(data_dir: Path, accept: tuple[str, ...] = ()) -> tuple[list[str], bool]:
    """One line per batch (OK for the original file, else its md5) and the copy's fingerprint; and whether the copy
    is acceptable: the original release, or a copy whose fingerprint is in `accept`. Raises when a file is
    missing."""
    folder = data_dir / "cifar-10-batches-py"
    lines, original = [], True
    for name, want in CIFAR10_MD5.items():
        path = folder / name
        if not path.is_file():
            raise FolderError(f"{path} is missing: build it with `trickbench data build IMAGES {data_dir}`")
        got = md5sum(path)
        original &= got == want
        lines.append(f"{name}: {'OK (original release)' if got == want else f'md5 {got}, not the original {want}'}")
    fp = copy_fingerprint(data_dir)
    if original:
        return [*lines, f"fingerprint {fp}: the original release"], True
    if fp in accept:
        return [*lines, f"fingerprint {fp}: not the original release; accepted (--accept {fp})"], True
    return [
        *lines,
        f"fingerprint {fp}: not the original release. To use this copy on purpose, pass --accept {fp} here and "
        "--data.init_args.accept_nonoriginal true to training",
    ], False


def parser(prog: str = "trickbench data") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write cifar-10-batches-py/ from IMAGES/{train,test}/<class>/")
    b.add_argument("images", type=Path)
    b.add_argument("data_dir", type=Path)
    b.add_argument("--seed", type=int, default=0, help="shuffle of the training images (default 0)")
    v = sub.add_parser("verify", help="compare a copy's batches with the original release (exit 1 if they differ)")
    v.add_argument("data_dir", type=Path)
    v.add_argument(
        "--accept",
        action="append",
        default=[],
        metavar="FINGERPRINT",
        help="a known rendition's fingerprint (as runs record it): such a copy passes (repeatable)",
    )
    return p


def main(argv: list[str] | None = None, prog: str = "trickbench data") -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    try:
        if args.cmd == "build":
            out = build(args.images, args.data_dir, args.seed)
            print(f"wrote {out} (data fingerprint {copy_fingerprint(args.data_dir)})")
            return 0
        lines, ok = verify(args.data_dir, tuple(args.accept))
        print("\n".join(lines))
        return 0 if ok else 1
    except FolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
