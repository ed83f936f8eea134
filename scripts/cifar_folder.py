"""Build `cifar-10-batches-py/` from a folder of CIFAR-10 images, or check a copy against the original release.

    trickbench data build IMAGES DATA_DIR      # IMAGES/{train,test}/<class name>/*.png|jpg
    trickbench data verify DATA_DIR            # md5 of each batch vs the original release

`build` writes torchvision's python layout (5 training batches of up to 10,000 images and `test_batch`,
pickles of {"data": uint8 (N, 3072), "labels": [...], "batch_label": ...}) that `CIFAR10DataModule` reads.
Images are taken class by class in file-name order and the training set is shuffled with a fixed seed
(`--seed`), so the batches are reproducible; a re-encoded copy is not the original release, so train with
`--data.init_args.accept_nonoriginal true` (the run records the copy's fingerprint). Class folders must be
the ten CIFAR-10 names. Nothing is written unless every image reads as 32x32 RGB.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from trickbench.datamodules.cifar10 import CIFAR10_MD5
from trickbench.datamodules.integrity import md5sum

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class FolderError(ValueError):
    pass


def read_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 images and (N,) labels from `folder/<class>/*`."""
    from PIL import Image

    missing = [c for c in CLASSES if not (folder / c).is_dir()]
    if missing:
        raise FolderError(
            f"{folder} lacks the class folder(s) {', '.join(missing)}: expected {folder}/<class>/ "
            f"for each of {', '.join(CLASSES)}"
        )
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise FolderError(f"{folder / name} holds no images ({', '.join(sorted(SUFFIXES))})")
        for path in files:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
            if arr.shape != (32, 32, 3):
                raise FolderError(f"{path} is {arr.shape[1]}x{arr.shape[0]}, not a 32x32 CIFAR-10 image")
            images.append(arr.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def write_batch(path: Path, data: np.ndarray, labels: np.ndarray, name: str) -> None:
    entry = {"data": data.reshape(len(data), -1), "labels": labels.tolist(), "batch_label": name}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(entry, fh, protocol=4)
    tmp.replace(path)


def build(images: Path, data_dir: Path, seed: int = 0) -> Path:
    x_train, y_train = read_split(images / "train")
    x_test, y_test = read_split(images / "test")  # read everything before writing anything
    order = np.random.default_rng(seed).permutation(len(x_train))
    x_train, y_train = x_train[order], y_train[order]
    out = data_dir / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(x_train)), 5), start=1):
        write_batch(out / f"data_batch_{i}", x_train[chunk], y_train[chunk], f"training batch {i} of 5")
    write_batch(out / "test_batch", x_test, y_test, "testing batch 1 of 1")
    (out / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES, "num_cases_per_batch": 10000}))
    return out


def verify(data_dir: Path) -> list[str]:
    """One line per batch: OK (the original file) or its md5; raises when a file is missing."""
    folder = data_dir / "cifar-10-batches-py"
    lines = []
    for name, want in CIFAR10_MD5.items():
        path = folder / name
        if not path.is_file():
            raise FolderError(f"{path} is missing: build it with `trickbench data build IMAGES {data_dir}`")
        got = md5sum(path)
        lines.append(f"{name}: {'OK (original release)' if got == want else f'md5 {got}, not the original {want}'}")
    return lines


def parser(prog: str = "trickbench data") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write cifar-10-batches-py/ from IMAGES/{train,test}/<class>/")
    b.add_argument("images", type=Path)
    b.add_argument("data_dir", type=Path)
    b.add_argument("--seed", type=int, default=0, help="shuffle of the training images (default 0)")
    v = sub.add_parser("verify", help="compare a copy's batches with the original release")
    v.add_argument("data_dir", type=Path)
    return p


def main(argv: list[str] | None = None, prog: str = "trickbench data") -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    try:
        if args.cmd == "build":
            print(f"wrote {build(args.images, args.data_dir, args.seed)}")
        else:
            print("\n".join(verify(args.data_dir)))
    except FolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
