"""The three sides of the step-overhead benchmark, each timing the same net on the same random images: `plain`
(a hand-written torch loop), `bare` (a bare Lightning Trainer) and `defaults` (`trickbench fit` with every run
default on)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch import Callback, Trainer, seed_everything

from trickbench.datamodules.augment import to_float
from trickbench.datamodules.base import TensorDataModule
from trickbench.lightning_modules import Classifier
from trickbench.lightning_modules.nets import MLP, AirbenchNet


@dataclass(frozen=True)
class Net:
    """One benchmarked configuration: the net, its data shape, batch size and optimizer (the same on every side)."""

    label: str
    net: dict  # class_path + init_args, as in a config
    shape: tuple[int, ...]
    batch: int
    optimizer: dict
    steps: int  # timed steps per repeat
    warmup: int
    n: int  # images per epoch


ADAM = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}}


SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01, "momentum": 0.9, "nesterov": True}}


MLP_PATH = "trickbench.lightning_modules.nets.MLP"


NETS = {
    "mlp512": Net(
        "MLP 784-512-512-10",
        {"class_path": MLP_PATH, "init_args": {"hidden_dims": [512, 512]}},
        (1, 28, 28),
        128,
        ADAM,
        64,
        16,
        8192,
    ),
    "mlp64": Net(
        "MLP 784-64-10",
        {"class_path": MLP_PATH, "init_args": {"hidden_dims": [64]}},
        (1, 28, 28),
        128,
        ADAM,
        64,
        16,
        8192,
    ),
    "cpu_fast": Net(
        "AirbenchNet [32, 128, 128] (CPU trick table)",
        {
            "class_path": "trickbench.lightning_modules.nets.AirbenchNet",
            "init_args": {"widths": [32, 128, 128], "residual": True},
        },
        (3, 32, 32),
        512,
        SGD,
        6,
        2,
        4096,
    ),
}


class RandomImages(TensorDataModule):
    """Random uint8 images of `shape`; only the cost of the data path matters here.

    Args:
        n: number of training images
        shape: image shape (C, H, W)
        batch_size: training batch size
    """

    num_classes = 10

    def __init__(self, n: int = 8192, shape: tuple[int, int, int] = (1, 28, 28), batch_size: int = 128) -> None:
        super().__init__(batch_size=batch_size)
        self.n, self.dims = n, tuple(shape)

    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (self.n, *self.dims), dtype=torch.uint8, generator=gen)
        return {"train": (x, torch.randint(0, 10, (self.n,), generator=gen))}

    def train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return normalise(x)


def normalise(x: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    return to_float(x, (0.5,) * channels, (0.25,) * channels)


def clocks() -> tuple[float, float]:
    """(wall, CPU) seconds. CPU time of this (single-threaded) process is what other agents' load on a
    shared machine disturbs least, so ratios are reported on it; wall time is kept alongside."""
    return time.perf_counter(), time.process_time()


class StepTimer(Callback):
    """Wall and CPU time from the end of optimizer step `warmup` to the end of step `warmup + steps`.
    The last timer's result is kept on the class (`StepTimer.last`), so a run built from a config reports it.

    Args:
        warmup: steps before timing starts
        steps: timed steps
    """

    last: tuple[float, float] = (0.0, 0.0)

    def __init__(self, warmup: int = 16, steps: int = 64) -> None:
        self.warmup, self.total, self.t0 = warmup, warmup + steps, (0.0, 0.0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        step = trainer.global_step  # optimizer steps done so far
        if step == self.warmup:
            self.t0 = clocks()
        elif step == self.total:
            StepTimer.last = tuple((b - a) / (self.total - self.warmup) for a, b in zip(self.t0, clocks()))


def build_net(cfg: Net) -> torch.nn.Module:
    seed_everything(0, verbose=False)
    cls = AirbenchNet if cfg.net["class_path"].endswith("AirbenchNet") else MLP
    return cls(**cfg.net["init_args"])


def build_optimizer(cfg: Net, params) -> torch.optim.Optimizer:  # noqa: ANN001
    cls = torch.optim.Adam if cfg.optimizer["class_path"].endswith("Adam") else torch.optim.SGD
    return cls(params, **cfg.optimizer["init_args"])


def time_bare(cfg: Net, dm: RandomImages) -> tuple[float, float]:
    model = Classifier(build_net(cfg), num_classes=10, optimizer=lambda p: build_optimizer(cfg, p))
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=cfg.warmup + cfg.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[StepTimer(cfg.warmup, cfg.steps)],
    )
    trainer.fit(model, datamodule=dm)
    return StepTimer.last


def defaults_config(cfg: Net) -> dict:
    """The `trickbench fit` config of the `defaults` side: the same model and data; trainer defaults applied by
    the CLI as for every run; no validation data (the benchmark's data has a train split only)."""
    return {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": cfg.warmup + cfg.steps,
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
            "callbacks+": [
                {
                    "class_path": "benchmarks.step_overhead_sides.StepTimer",
                    "init_args": {"warmup": cfg.warmup, "steps": cfg.steps},
                }
            ],
        },
        "model": {
            "class_path": "trickbench.lightning_modules.Classifier",
            "init_args": {"net": cfg.net, "num_classes": 10, "optimizer": cfg.optimizer},
        },
        "data": {
            "class_path": "benchmarks.step_overhead.RandomImages",
            "init_args": {"n": cfg.n, "shape": list(cfg.shape), "batch_size": cfg.batch},
        },
        "test_after_fit": False,
    }


def time_defaults(cfg: Net, work: Path) -> tuple[float, float]:
    from trickbench.lightning_cli import main as trickbench_fit

    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(defaults_config(cfg), sort_keys=False))
    run_dir = Path(tempfile.mkdtemp(dir=work))
    trickbench_fit(args=["fit", "--config", str(config), "--run_dir", str(run_dir), "--overwrite", "true"])
    return StepTimer.last


def time_plain(cfg: Net, dm: RandomImages) -> tuple[float, float]:
    net = build_net(cfg)
    opt = build_optimizer(cfg, net.parameters())
    x_all, y_all = dm.splits["train"]
    per_epoch, bs, done, total = len(x_all) // cfg.batch, cfg.batch, 0, cfg.warmup + cfg.steps
    t0 = clocks()
    net.train()
    while done < total:
        order = torch.randperm(len(x_all))
        for i in range(min(per_epoch, total - done)):
            idx = order[i * bs : (i + 1) * bs]
            loss = F.cross_entropy(net(normalise(x_all[idx])), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == cfg.warmup:
                t0 = clocks()
    return tuple((b - a) / cfg.steps for a, b in zip(t0, clocks()))
