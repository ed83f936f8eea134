"""Benchmark 2: CIFAR-10 training-data throughput, in-memory TensorLoader vs torchvision's path.

Both sides deliver the same thing: normalised float32 batches of 512 after random crop (4 px zero
padding) and horizontal flip. Template side: `CIFAR10DataModule`'s TensorLoader (one `index_select`
per batch) + its batched `train_transform`. Reference side: `torchvision.datasets.CIFAR10` +
per-sample `RandomCrop/RandomHorizontalFlip/ToTensor/Normalize` + `DataLoader` (num_workers 0 and 1).
Sides alternate; images/s is the median over repeats.

torchvision's CIFAR10 checks the md5 of every batch file even with download=False, so on the JPEG
rendition (different bytes, same format) it refuses to load. `UncheckedCIFAR10` skips only that
check; the decoding and per-sample work measured are torchvision's own.

    OMP_NUM_THREADS=1 python -m benchmarks.data_path --data_dir DATA
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import time
import warnings

import torch
from torch.utils.data import DataLoader
from torchvision import transforms as T
from torchvision.datasets import CIFAR10

from benchmarks.common import RESULTS, median, refuse_existing, save_with_machine, table
from trickbench.datamodules.cifar10 import CIFAR10_MEAN, CIFAR10_STD, CIFAR10DataModule

NAME = "data_path"  # results go to results/bench/<NAME>/


class UncheckedCIFAR10(CIFAR10):
    """torchvision's CIFAR10 with the md5 comparison replaced by a presence check (see module doc)."""

    def _check_integrity(self) -> bool:
        return all(
            os.path.isfile(os.path.join(self.root, self.base_folder, f)) for f, _ in self.train_list + self.test_list
        )

    def _load_meta(self) -> None:
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as fh:
            self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


@functools.cache
def _datamodule(data_dir: str, batch_size: int) -> CIFAR10DataModule:
    dm = CIFAR10DataModule(data_dir, val_size=0, accept_nonoriginal=True, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the JPEG rendition's checksum warning
        dm.setup("fit")  # decoding is not timed on either side (torchvision decodes in __init__ too)
    return dm


def tensor_side(data_dir: str, batch_size: int, max_images: int) -> float:
    """Images/s of TensorLoader + batched crop/flip/normalise (data already decoded in memory)."""
    dm = _datamodule(data_dir, batch_size)
    return _drain(((dm.train_transform(x, dm._aug_gen), y) for x, y in dm.train_dataloader()), max_images)


def torchvision_side(data_dir: str, batch_size: int, max_images: int, workers: int) -> float:
    tf = T.Compose(
        [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
    )
    ds = UncheckedCIFAR10(data_dir, train=True, download=False, transform=tf)
    loader = DataLoader(
        ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers, persistent_workers=False
    )
    return _drain(iter(loader), max_images)


def _drain(batches, max_images: int) -> float:
    """Images/s from the first batch request to `max_images` delivered (worker start-up included)."""
    t0, n = time.perf_counter(), 0
    for x, _ in batches:
        n += len(x)
        if n >= max_images:
            break
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", default="data")
    ap.add_argument("--batch_size", type=int, default=512)
    ap.add_argument("--images", type=int, default=10240, help="images timed per measurement")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / NAME))
    args = ap.parse_args(argv)
    refuse_existing(args.out, NAME)
    torch.manual_seed(0)
    sides = {"tensorloader": lambda: tensor_side(args.data_dir, args.batch_size, args.images)}
    for w in args.workers:
        sides[f"torchvision_w{w}"] = lambda w=w: torchvision_side(args.data_dir, args.batch_size, args.images, w)
    ips: dict[str, list[float]] = {k: [] for k in sides}
    for rep in range(args.repeats):
        for name in list(sides) if rep % 2 == 0 else list(sides)[::-1]:
            ips[name].append(sides[name]())
            print(f"rep {rep} {name:16s} {ips[name][-1]:10.0f} img/s", flush=True)
    med = {k: median(v) for k, v in ips.items()}
    rows = [[k, f"{v:.0f}", f"{med['tensorloader'] / v:.1f}x"] for k, v in med.items()]
    md = table(
        [
            f"data path (crop pad 4 + flip + normalise, batch {args.batch_size})",
            "images/s (median)",
            "TensorLoader speed-up",
        ],
        rows,
    )
    md += f"\n\nMedian of {args.repeats} alternating repeats of {args.images} images each (worker start-up included)."
    save_with_machine(
        args.out,
        "data_path",
        {"args": vars(args), "images_per_s": ips, "median_images_per_s": med},
        "Data path: TensorLoader + batched augmentation vs torchvision CIFAR10 + DataLoader",
        md,
    )
    print(md)
    return med


if __name__ == "__main__":
    main()
