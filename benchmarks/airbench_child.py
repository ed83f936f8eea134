"""The airbench side of the side by side: airbench's own training code (`pip install airbench`) run in a child
process on the same CPU, the same data (written in airbench's tensor format from the CIFAR-10 release folder) and
the same thread count as trickbench's side."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


# --- the airbench child ---------------------------------------------------------------------------
class WallEvent:
    """Stand-in for torch.cuda.Event(enable_timing=True) on a CPU: wall-clock milliseconds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.t = 0.0

    def record(self, *args: Any) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, end: WallEvent) -> float:
        return (end.t - self.t) * 1e3


@contextlib.contextmanager
def cpu_fp32() -> Iterator[None]:
    """While airbench builds its net and loaders: `.half()` and `.cuda()` do nothing (fp32 on the CPU)."""
    import torch
    from torch import nn

    saved = (nn.Module.half, nn.Module.cuda, torch.Tensor.half)
    nn.Module.half = lambda self: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.half = lambda self, *a, **k: self.float()  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.half, nn.Module.cuda, torch.Tensor.half = saved  # type: ignore[method-assign]


def airbench_child(seed: int, epochs: float | None) -> None:
    import airbench
    import torch
    from airbench import lib_airbench94, utils

    torch.manual_seed(seed)
    on_gpu = torch.cuda.is_available()
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    if on_gpu:
        train_loader = utils.CifarLoader(
            "cifar10", train=True, batch_size=1024, aug=lib_airbench94.hyp["aug"], altflip=True
        )
        test_loader = utils.CifarLoader("cifar10", train=False, batch_size=2000)
        kwargs = {"epochs": epochs} if epochs else {}
        model = lib_airbench94.train94(train_loader, verbose=False, **kwargs)
    else:
        torch.cuda.Event = WallEvent  # type: ignore[misc, assignment]
        torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
        original_init = utils.CifarLoader.__init__

        def cpu_loader(
            self: Any,
            path: str,
            train: bool = True,
            batch_size: int = 500,
            aug: Any = None,
            drop_last: Any = None,
            shuffle: Any = None,
            altflip: bool = False,
            gpu: Any = 0,
        ) -> None:
            with cpu_fp32():
                original_init(self, path, train, batch_size, aug, drop_last, shuffle, altflip, gpu="cpu")

        utils.CifarLoader.__init__ = cpu_loader  # type: ignore[method-assign]
        train_loader = utils.CifarLoader(
            "cifar10", train=True, batch_size=1024, aug=lib_airbench94.hyp["aug"], altflip=True
        )
        test_loader = utils.CifarLoader("cifar10", train=False, batch_size=2000)

        def make_net() -> Any:
            with cpu_fp32():
                return lib_airbench94.make_net94()

        kwargs = {"epochs": epochs} if epochs else {}
        model = lib_airbench94.train94(train_loader, make_net=make_net, verbose=False, **kwargs)
    train_cpu, train_wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    acc_tta = utils.evaluate(model, test_loader, tta_level=2)
    total_cpu, total_wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    acc = utils.evaluate(model, test_loader, tta_level=0)  # not part of the timed run: subtracted by the driver
    extra_cpu = time.process_time() - start_cpu - total_cpu
    print(
        json.dumps(
            {
                "test_acc_tta": acc_tta,
                "test_acc_no_tta": acc,
                "in_process_train_cpu_s": train_cpu,
                "in_process_train_wall_s": train_wall,
                "in_process_train_and_tta_cpu_s": total_cpu,
                "in_process_train_and_tta_wall_s": total_wall,
                "untimed_no_tta_eval_cpu_s": extra_cpu,
                "airbench": airbench.__file__,
                "device": "cuda" if on_gpu else "cpu",
            }
        )
    )


def write_airbench_data(data_dir: Path, accept_nonoriginal: bool, work: Path) -> None:
    """The DataModule's CIFAR-10 images in airbench's format (uint8 NHWC + labels + class names)."""
    import torch

    from trickbench.datamodules import CIFAR10DataModule

    dm = CIFAR10DataModule(str(data_dir), val_size=0, accept_nonoriginal=accept_nonoriginal, alternating_flip=False)
    dm.setup("fit")
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (work / "cifar10").mkdir(parents=True, exist_ok=True)
    # val_size 0 still permutes the training set (seeded_split); sort back to the files' order.
    from trickbench.datamodules.cifar10 import read_batch

    for name, files in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        parts = [read_batch(dm.folder / f) for f in files]
        images = torch.cat([p[0] for p in parts]).permute(0, 2, 3, 1).contiguous()  # NCHW -> NHWC
        labels = torch.cat([p[1] for p in parts])
        torch.save({"images": images, "labels": labels, "classes": classes}, work / "cifar10" / f"{name}.pt")
